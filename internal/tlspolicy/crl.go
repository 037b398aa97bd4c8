package tlspolicy

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/verify"

	"github.com/pgsecure/pgsecure/internal/files"
	"github.com/pgsecure/pgsecure/internal/x509check"
)

// crlSource is every CRL pgsecure checks chains against.
type crlSource struct {
	files []*reloading[[]*x509check.CRL]
	dirs  []*crlDir

	logger     func() *slog.Logger
	warnWithin time.Duration // Builder.ExpiryWarning; 0 disables the warning
	warned     sync.Map      // CRLs already warned about
}

// crlSource collects the CRLs of the builder and of sslcrl / sslcrldir (or
// PGSSLCRL / PGSSLCRLDIR); nil when none is set. A file or directory that
// cannot be read, or a file with no parsable CRL, is refused.
func (b *Options) crlSource(cs *libpq.Settings) (*crlSource, error) {
	type named struct{ path, setting, From string }
	var fileList, dirList []named
	for _, p := range b.CRLFiles {
		fileList = append(fileList, named{p, "CRLFiles", "builder"})
	}
	for _, d := range b.CRLDirs {
		dirList = append(dirList, named{d, "CRLDir", "builder"})
	}
	if s := cs.Get("sslcrl"); s.Set && s.Value != "" { // libpq ignores an empty value
		fileList = append(fileList, named{s.Value, "sslcrl", s.From})
	}
	if s := cs.Get("sslcrldir"); s.Set && s.Value != "" {
		// Like OpenSSL's hashed-directory lookup, several directories may
		// be given, separated by ':'.
		for _, d := range strings.Split(s.Value, string(os.PathListSeparator)) {
			if d != "" {
				dirList = append(dirList, named{d, "sslcrldir", s.From})
			}
		}
	}
	if len(fileList)+len(dirList) == 0 {
		b.warnImplicitCRL()
		return nil, nil
	}
	src := &crlSource{logger: b.Log, warnWithin: b.ExpiryWarn}
	for _, f := range fileList {
		path := f.path
		rel, err := newReloading("CRL file "+path, []string{path}, func() ([]*x509check.CRL, error) { return loadCRLFile(path) }, b.Log)
		if err != nil {
			return nil, &verify.ConfigError{Setting: f.setting, From: f.From, Problem: "cannot load the certificate revocation list", Err: err,
				Fix: "check the path and that the file holds PEM \"X509 CRL\" blocks (fetch a fresh CRL from the CA: openssl ca -gencrl -out FILE)"}
		}
		src.files = append(src.files, rel)
	}
	for _, d := range dirList {
		cd := &crlDir{dir: d.path, logger: b.Log}
		if err := cd.load(); err != nil {
			return nil, &verify.ConfigError{Setting: d.setting, From: d.From, Problem: "cannot load the certificate revocation list directory", Err: err,
				Fix: "give a directory of PEM CRL files prepared with: openssl rehash DIR"}
		}
		src.dirs = append(src.dirs, cd)
	}
	return src, nil
}

// maxCRLFile bounds a CRL file: large public CAs publish CRLs of several
// megabytes, far above files.MaxSize.
const maxCRLFile = 64 << 20

// warnImplicitCRL warns when ~/.postgresql/root.crl exists: libpq checks
// revocation against it when neither sslcrl nor sslcrldir is set, pgsecure
// never reads it implicitly, so a setup that relied on it would silently
// lose the check.
func (b *Options) warnImplicitCRL() {
	home, err := os.UserHomeDir()
	if err != nil {
		return
	}
	if p := filepath.Join(home, ".postgresql", "root.crl"); libpq.FileExists(p) {
		b.Log().Warn("pgsecure: "+p+" exists but is not used: libpq would check the server's certificates against it, pgsecure reads no CRL implicitly; "+
			"pass it explicitly (sslcrl="+p+"; PGSSLCRL; Builder.CRLFiles; pgsecure check --crl) to keep that check", slog.String("file", p))
	}
}

func loadCRLFile(path string) ([]*x509check.CRL, error) {
	b, err := files.ReadUpTo(path, maxCRLFile, nil)
	if err != nil {
		return nil, err
	}
	return x509check.ParseCRLs(b, path)
}

// crlSnapshot is the CRLs as loaded for one verification: the files'
// CRLs, and each directory's files by name. It implements
// x509check.CRLStore.
type crlSnapshot struct {
	files []*x509check.CRL
	dirs  []map[string][]*x509check.CRL
}

// snapshot re-reads what changed and returns the CRLs to verify with.
func (s *crlSource) snapshot() *crlSnapshot {
	snap := &crlSnapshot{}
	for _, f := range s.files {
		snap.files = append(snap.files, f.get()...)
	}
	for _, d := range s.dirs {
		snap.dirs = append(snap.dirs, d.current())
	}
	return snap
}

// CRLsFor returns every CRL of the files, and those the directories file
// under the issuer name's hash: <hash>.r0, .r1, ... up to the first missing
// file, as OpenSSL's X509_LOOKUP_hash_dir reads them.
func (s *crlSnapshot) CRLsFor(issuer []byte) []*x509check.CRL {
	out := slices.Clone(s.files)
	if len(s.dirs) == 0 {
		return out
	}
	h, err := x509check.NameHash(issuer)
	if err != nil {
		return out
	}
	for _, byName := range s.dirs {
		for k := 0; ; k++ {
			crls, ok := byName[fmt.Sprintf("%08x.r%d", h, k)]
			if !ok {
				break
			}
			out = append(out, crls...)
		}
	}
	return out
}

// all returns every CRL of the snapshot.
func (s *crlSnapshot) all() []*x509check.CRL {
	out := slices.Clone(s.files)
	for _, byName := range s.dirs {
		for _, crls := range byName {
			out = append(out, crls...)
		}
	}
	return out
}

// check verifies the revocation status of the chains VerifyChain returned:
// one chain that passes suffices (OpenSSL builds one; crypto/x509 may offer
// several, and each ends in a pinned root). The first chain's failure is
// reported.
func (s *crlSource) check(chains [][]*x509.Certificate, now time.Time) error {
	snap := s.snapshot()
	s.warnExpiring(snap, now)
	var first error
	for _, chain := range chains {
		err := x509check.CheckRevocation(chain, snap, now)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// warnExpiring logs once per CRL a warning when a CRL is close to its
// nextUpdate, after which libpq and pgsecure refuse every connection it
// covers: when less than a quarter of its validity period is left (a CRL
// re-issued daily warns 6 hours ahead, a monthly one a week ahead), and
// never earlier than Builder.ExpiryWarning.
func (s *crlSource) warnExpiring(snap *crlSnapshot, now time.Time) {
	if s.warnWithin <= 0 {
		return
	}
	for _, c := range snap.all() {
		l := c.List
		if l.NextUpdate.IsZero() || l.NextUpdate.Sub(now) > min(s.warnWithin, l.NextUpdate.Sub(l.ThisUpdate)/4) {
			continue
		}
		if _, dup := s.warned.LoadOrStore(x509check.DescribeCRL(c)+"@"+l.ThisUpdate.String(), struct{}{}); dup {
			continue
		}
		s.logger().Warn("pgsecure: certificate revocation list expires soon; fetch a fresh CRL from the CA (openssl ca -gencrl -out FILE) and replace the file",
			slog.String("issuer", l.Issuer.String()), slog.String("file", c.Source), slog.Time("next_update", l.NextUpdate))
	}
}

// hashedCRLName is a file name `openssl rehash` gives a CRL.
var hashedCRLName = regexp.MustCompile(`^([0-9a-f]{8})\.r([0-9]+)$`)

// crlDir is an `openssl rehash` directory. OpenSSL's X509_LOOKUP_hash_dir
// reads, for an issuer name hash H, the files H.r0, H.r1, ... up to the
// first one missing; crlDir reads every such file of the directory, keeps
// them by name, and serves that same consecutive run. It re-reads the
// directory when a file is added, removed or changed, keeping the last good
// contents (with one warning) when a changed file does not parse.
type crlDir struct {
	dir    string
	logger func() *slog.Logger

	mu    sync.Mutex
	stamp files.Stamp
	names []string
	crls  map[string][]*x509check.CRL // file name -> its CRLs
}

// scan lists the directory's hashed CRL files and their stamp.
func (d *crlDir) scan() ([]string, files.Stamp, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, "", err
	}
	var names, paths []string
	for _, e := range entries {
		if hashedCRLName.MatchString(e.Name()) {
			names = append(names, e.Name())
			paths = append(paths, filepath.Join(d.dir, e.Name()))
		}
	}
	return names, files.StampOf(paths...), nil
}

// load reads the directory for the first time; it must succeed.
func (d *crlDir) load() error {
	names, stamp, err := d.scan()
	if err != nil {
		return err
	}
	crls, err := d.read(names)
	if err != nil {
		return err
	}
	d.names, d.stamp, d.crls = names, stamp, crls
	return nil
}

func (d *crlDir) read(names []string) (map[string][]*x509check.CRL, error) {
	out := make(map[string][]*x509check.CRL, len(names))
	for _, n := range names {
		crls, err := loadCRLFile(filepath.Join(d.dir, n))
		if err != nil {
			return nil, err
		}
		out[n] = crls
	}
	return out, nil
}

// current returns the directory's CRLs by file name, re-reading it first if
// it changed.
func (d *crlDir) current() map[string][]*x509check.CRL {
	names, stamp, err := d.scan()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil && (stamp != d.stamp || !slices.Equal(names, d.names)) {
		crls, rerr := d.read(names)
		d.names, d.stamp = names, stamp // warn once per change
		if rerr != nil {
			d.logger().Warn("pgsecure: keeping the previous material because the changed file could not be loaded",
				slog.String("file", "CRL directory "+d.dir), slog.String("error", rerr.Error()))
		} else {
			d.crls = crls
			d.logger().Info("pgsecure: reloaded changed file", slog.String("file", "CRL directory "+d.dir))
		}
	}
	return d.crls
}
