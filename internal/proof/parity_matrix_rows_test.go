package proof

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

// served is what the server presents in a group of rows: its certificate
// file (leaf first, then what it sends of its chain) and key. The server
// reloads once per served value.
type served struct {
	name            string
	certPEM, keyPEM []byte
}

// rootForm is one way of writing sslrootcert (RootCAFile for pgsecure).
type rootForm struct {
	name string
	pem  []byte
	// system: pgsecure gets sslrootcert=system with SSL_CERT_FILE set to a
	// file holding pem; psql 15, which predates sslrootcert=system, gets
	// that file as sslrootcert, which is what libpq 16's "system" loads
	// (OpenSSL's default paths, SSL_CERT_FILE first).
	system bool
}

// parityRow is one connection both clients attempt.
type parityRow struct {
	section, what string // table columns: dimension and its values
	srv           *served
	roots         rootForm
	host          string
	// params are further libpq keywords given to both clients alike. This is
	// the hook for more client-side dimensions (sslcrl, sslcrldir: a CRL
	// dimension adds its files here and its rows in a section of its own).
	params map[string]string
	// limit names the entry of README's Limits section by which pgsecure may
	// differ from libpq on this row ("" none).
	limit string
}

func (r parityRow) String() string {
	return r.section + ": " + r.what + " | server sends " + r.srv.name + " | sslrootcert " + r.roots.name + " | host " + r.host
}

// limitRSAPSS is README's Limits entry for RSA-PSS server keys.
const limitRSAPSS = "RSA-PSS server keys"

// parityMatrixRows is the generated matrix: for each dimension, the cross product
// of its values with the other dimensions held at a value that lets the
// dimension decide (leaf names × hosts under the root; chain shapes ×
// sslrootcert forms; constrained CAs × leaf names; ...). Rows that share
// what the server sends are adjacent, so the server reloads once for them.
//
// To add a dimension, add a section: a function returning rows, appended
// here. Client-side settings go in parityRow.params, which both clients get
// alike; a CRL section, for instance, would write its CRL files and set
// sslcrl or sslcrldir there, for chains whose issuers the CRLs cover.
func parityMatrixRows(t *testing.T, m *mpki) []parityRow {
	var rows []parityRow
	rows = append(rows, nameRows(m)...)
	rows = append(rows, chainRows(t, m)...)
	rows = append(rows, constraintRows(t, m)...)
	rows = append(rows, issuerRows(t, m)...)
	rows = append(rows, validityRows(t, m)...)
	rows = append(rows, keyRows(t, m)...)
	return rows
}

func ip(s string) net.IP { return net.ParseIP(s) }

// Host lists reused across name shapes.
var (
	ipv4Spellings = []string{"127.0.0.1", "127.1", "127.0.1", "127.000.000.001", "0x7f.0.0.1", "0x7F000001", "0177.0.0.1",
		"017700000001", "2130706433", "0x7f.1", "::ffff:127.0.0.1"}
	ipv6Spellings = []string{"::1", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "::0:1", "127.0.0.1"}
)

// nameRows: leaf names × hosts, issued by the pinned root.
func nameRows(m *mpki) []parityRow {
	shapes := []struct {
		what  string
		spec  leafSpec
		hosts []string
	}{
		{"CN only, DNS without dot", leafSpec{cns: []string{"localhost"}}, []string{"localhost", "LOCALHOST", "localhost.", "db.example.test"}},
		{"CN only, DNS with dot", leafSpec{cns: []string{"db.example.test"}}, []string{"db.example.test", "DB.Example.TEST", "db.example.test.", "example.test", "localhost"}},
		{"CN only, IPv4", leafSpec{cns: []string{"127.0.0.1"}}, []string{"127.0.0.1", "127.1", "127.000.000.001", "localhost"}},
		{"CN only, IPv4 spelled with zeros", leafSpec{cns: []string{"127.000.000.001"}, dns: nil}, []string{"127.000.000.001", "127.0.0.1"}},
		{"CN only, IPv6", leafSpec{cns: []string{"::1"}}, []string{"::1", "0:0:0:0:0:0:0:1"}},
		{"CN only, upper case", leafSpec{cns: []string{"DB.EXAMPLE.TEST"}}, []string{"db.example.test"}},
		{"CN only, trailing dot", leafSpec{cns: []string{"db.example.test."}}, []string{"db.example.test", "db.example.test."}},
		{"CN only, wildcard *.x", leafSpec{cns: []string{"*.example.test"}}, []string{"db.example.test", "a.db.example.test", "example.test"}},
		{"CN only, punycode", leafSpec{cns: []string{"xn--bcher-kva.example"}}, []string{"xn--bcher-kva.example", "bücher.example"}},
		{"CN only, raw UTF-8", leafSpec{cns: []string{"bücher.example"}}, []string{"bücher.example", "xn--bcher-kva.example", "BüCHER.example"}},
		{"CN only, look-alike long s", leafSpec{cns: []string{"ſerver.example.test"}}, []string{"server.example.test"}},
		{"CN only, look-alike Kelvin sign", leafSpec{cns: []string{"\u212Aey.example.test"}}, []string{"key.example.test"}},
		{"CN only, wildcard look-alike Kelvin sign", leafSpec{cns: []string{"*.e\u212Aample.test"}}, []string{"db.ekample.test"}},
		{"several CNs", leafSpec{cns: []string{"db.example.test", "localhost"}}, []string{"db.example.test", "localhost"}},
		{"no names at all", leafSpec{}, []string{"localhost", "127.0.0.1"}},
		{"SAN DNS", leafSpec{cns: []string{"x"}, dns: []string{"localhost"}}, []string{"localhost", "LOCALHOST", "localhost.", "127.0.0.1", "other.test"}},
		{"SAN DNS upper case", leafSpec{dns: []string{"LOCALHOST"}}, []string{"localhost"}},
		{"SAN DNS trailing dot", leafSpec{dns: []string{"db.example.test."}}, []string{"db.example.test", "db.example.test."}},
		{"SAN DNS punycode", leafSpec{dns: []string{"xn--bcher-kva.example"}}, []string{"xn--bcher-kva.example", "bücher.example"}},
		{"SAN DNS wildcard *.x", leafSpec{dns: []string{"*.example.test"}}, []string{"db.example.test", "DB.EXAMPLE.TEST", "a.db.example.test", "example.test", ".example.test"}},
		{"SAN DNS wildcard *x.y", leafSpec{dns: []string{"*b.example.test"}}, []string{"db.example.test", "b.example.test"}},
		{"SAN DNS wildcard x*.y", leafSpec{dns: []string{"d*.example.test"}}, []string{"db.example.test", "d.example.test"}},
		{"SAN DNS bare *", leafSpec{dns: []string{"*"}}, []string{"localhost", "db.example.test"}},
		{"SAN DNS wildcard *.x, CN matching", leafSpec{cns: []string{"localhost"}, dns: []string{"*.example.test"}}, []string{"localhost", "db.example.test"}},
		{"SAN DNS other, CN matching", leafSpec{cns: []string{"localhost"}, dns: []string{"db.example.test"}}, []string{"localhost", "db.example.test"}},
		{"SAN IPv4", leafSpec{cns: []string{"x"}, ips: []net.IP{ip("127.0.0.1")}}, append(append([]string{}, ipv4Spellings...), "localhost")},
		{"SAN IPv4 other, CN spelled as the host", leafSpec{cns: []string{"127.000.000.001"}, ips: []net.IP{ip("127.0.0.2")}}, []string{"127.000.000.001"}},
		{"SAN IPv4, CN matching DNS host", leafSpec{cns: []string{"localhost"}, ips: []net.IP{ip("127.0.0.1")}}, []string{"localhost", "127.0.0.1"}},
		{"SAN IPv6", leafSpec{cns: []string{"x"}, ips: []net.IP{ip("::1")}}, ipv6Spellings},
		{"SAN DNS, CN IPv4", leafSpec{cns: []string{"127.0.0.1"}, dns: []string{"localhost"}}, []string{"127.0.0.1", "localhost", "127.1"}},
		{"SAN DNS, CN IPv4 with zeros", leafSpec{cns: []string{"127.000.000.001"}, dns: []string{"localhost"}}, []string{"127.000.000.001"}},
		{"SAN DNS and IP", leafSpec{cns: []string{"x"}, dns: []string{"localhost"}, ips: []net.IP{ip("127.0.0.1"), ip("::1")}}, []string{"localhost", "127.0.0.1", "::1", "127.1", "other.test"}},
	}
	var rows []parityRow
	for _, s := range shapes {
		leaf := m.leaf(s.spec, m.root)
		srv := &served{name: "leaf", certPEM: leaf.pem, keyPEM: leaf.keyPEM(m.t)}
		for _, h := range s.hosts {
			rows = append(rows, parityRow{section: "names", what: s.what + " " + describeLeaf(s.spec), srv: srv,
				roots: rootForm{name: "root", pem: m.root.pem}, host: h})
		}
	}
	return rows
}

func describeLeaf(s leafSpec) string {
	var parts []string
	if len(s.cns) > 0 {
		parts = append(parts, "CN="+strings.Join(s.cns, "+CN="))
	}
	for _, d := range s.dns {
		parts = append(parts, "DNS:"+d)
	}
	for _, a := range s.ips {
		parts = append(parts, "IP:"+a.String())
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// sends is a served value: leaf and the chain certificates after it.
func sends(t *testing.T, name string, leaf *mcert, chain ...*mcert) *served {
	pems := [][]byte{leaf.pem}
	for _, c := range chain {
		pems = append(pems, c.pem)
	}
	return &served{name: name, certPEM: join(pems...), keyPEM: leaf.keyPEM(t)}
}

// subjects names the certificates for the table.
func subjects(cs []*mcert) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.cert.Subject.CommonName)
	}
	return out
}

// localLeaf is the names every row outside the names section uses.
var localLeaf = leafSpec{cns: []string{"localhost"}, dns: []string{"localhost"}, ips: []net.IP{ip("127.0.0.1")}}

// chainRows: what the server sends of its chain × sslrootcert forms.
func chainRows(t *testing.T, m *mpki) []parityRow {
	leafRoot := m.leaf(localLeaf, m.root)
	leafInter := m.leaf(localLeaf, m.inter)
	leafInter2 := m.leaf(localLeaf, m.inter2)
	self := m.leaf(leafSpec{cns: []string{"localhost"}, edit: func(c *x509.Certificate) {
		c.IsCA, c.KeyUsage = true, c.KeyUsage|x509.KeyUsageCertSign // as openssl req -x509 makes it
	}}, nil)
	selfNoCA := m.leaf(leafSpec{cns: []string{"localhost"}, dns: []string{"localhost"}}, nil)
	// Cross-signing: rootB is self-signed; crossB has rootB's subject and
	// key, issued by the pinned root. leafB is issued by rootB's key.
	rootB := m.ca("Matrix root B", nil, nil)
	crossB := m.caWithKey("Matrix root B", rootB.key, m.root, nil)
	leafB := m.leaf(localLeaf, rootB)

	text := func(pem []byte, subject string) []byte {
		return join([]byte("subject="+subject+"\nissuer=whatever\n# a comment before the block\n"), pem, []byte("trailing text after the block\n"))
	}
	common := []rootForm{
		{name: "root", pem: m.root.pem},
		{name: "intermediate alone", pem: m.inter.pem},
		{name: "root+intermediate", pem: join(m.root.pem, m.inter.pem)},
		{name: "intermediate+root", pem: join(m.inter.pem, m.root.pem)},
		{name: "root twice", pem: join(m.root.pem, m.root.pem)},
		{name: "root with text around", pem: text(m.root.pem, "CN=Matrix root CA")},
		{name: "root+intermediate with text around", pem: join(text(m.root.pem, "root"), text(m.inter.pem, "inter"))},
		{name: "unpinned CA", pem: m.other.pem},
		{name: "unpinned CA+root", pem: join(m.other.pem, m.root.pem)},
		{name: "system (SSL_CERT_FILE: root)", pem: m.root.pem, system: true},
		{name: "system (SSL_CERT_FILE: root+intermediate)", pem: join(m.root.pem, m.inter.pem), system: true},
	}
	deep := append([]rootForm{
		{name: "second intermediate alone", pem: m.inter2.pem},
		{name: "root+both intermediates", pem: join(m.root.pem, m.inter.pem, m.inter2.pem)},
		{name: "second intermediate+intermediate", pem: join(m.inter2.pem, m.inter.pem)},
		{name: "second intermediate+root", pem: join(m.inter2.pem, m.root.pem)},
	}, common...)
	groups := []struct {
		srv   *served
		forms []rootForm
	}{
		{sends(t, "leaf (issued by root)", leafRoot), append([]rootForm{{name: "the leaf itself", pem: leafRoot.pem}}, common...)},
		{sends(t, "leaf (issued by intermediate)", leafInter), append([]rootForm{{name: "the leaf itself", pem: leafInter.pem}}, common...)},
		{sends(t, "leaf+intermediate", leafInter, m.inter), common},
		{sends(t, "leaf+intermediate+root", leafInter, m.inter, m.root), common},
		{sends(t, "leaf+unrelated CA", leafInter, m.other), common[:4]},
		{sends(t, "leaf (under 2 intermediates)", leafInter2), deep},
		{sends(t, "leaf+second intermediate", leafInter2, m.inter2), deep},
		{sends(t, "leaf+both intermediates", leafInter2, m.inter2, m.inter), deep},
		{sends(t, "self-signed leaf CA:TRUE (openssl req -x509)", self), []rootForm{
			{name: "the leaf itself", pem: self.pem}, {name: "root", pem: m.root.pem}, {name: "root+the leaf", pem: join(m.root.pem, self.pem)},
			{name: "system (SSL_CERT_FILE: the leaf)", pem: self.pem, system: true}}},
		{sends(t, "self-signed leaf, not a CA", selfNoCA), []rootForm{{name: "the leaf itself", pem: selfNoCA.pem}}},
		{sends(t, "leaf+cross-signed root B", leafB, crossB), []rootForm{
			{name: "root", pem: m.root.pem}, {name: "root B", pem: rootB.pem}, {name: "cross-signed root B alone", pem: crossB.pem},
			{name: "root+cross-signed root B", pem: join(m.root.pem, crossB.pem)}}},
		{sends(t, "leaf (issued by root B)", leafB), []rootForm{
			{name: "root", pem: m.root.pem}, {name: "root B", pem: rootB.pem}, {name: "root+cross-signed root B", pem: join(m.root.pem, crossB.pem)}}},
	}
	var rows []parityRow
	for _, g := range groups {
		for _, f := range g.forms {
			rows = append(rows, parityRow{section: "chain", what: "path building", srv: g.srv, roots: f, host: "localhost"})
		}
	}
	return rows
}

// constraintRows: CAs with name constraints × leaf names (each leaf sent
// with its CA, the root pinned).
func constraintRows(t *testing.T, m *mpki) []parityRow {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	_, one, _ := net.ParseCIDR("127.0.0.1/32")
	cas := []struct {
		what string
		edit func(*x509.Certificate)
	}{
		{"permitted DNS example.test", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.test"} }},
		{"permitted DNS .example.test", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{".example.test"} }},
		{"excluded DNS evil.test", func(c *x509.Certificate) { c.ExcludedDNSDomains = []string{"evil.test"} }},
		{"permitted IP 127.0.0.0/8", func(c *x509.Certificate) { c.PermittedIPRanges = []*net.IPNet{loopback} }},
		{"excluded IP 127.0.0.1/32", func(c *x509.Certificate) { c.ExcludedIPRanges = []*net.IPNet{one} }},
		{"permitted DNS example.test and IP 127.0.0.0/8", func(c *x509.Certificate) {
			c.PermittedDNSDomains, c.PermittedIPRanges = []string{"example.test"}, []*net.IPNet{loopback}
		}},
	}
	leaves := []struct {
		spec leafSpec
		host string
	}{
		{leafSpec{cns: []string{"db.example.test"}}, "db.example.test"},
		{leafSpec{cns: []string{"example.test"}}, "example.test"},
		{leafSpec{cns: []string{"db.evil.test"}}, "db.evil.test"},
		{leafSpec{cns: []string{"DB.EVIL.TEST"}}, "db.evil.test"},
		{leafSpec{cns: []string{"localhost"}}, "localhost"},
		{leafSpec{cns: []string{"127.0.0.1"}}, "127.0.0.1"},
		{leafSpec{cns: []string{"*.evil.test"}}, "db.evil.test"},
		{leafSpec{cns: []string{"db_1.evil.test"}}, "db_1.evil.test"},
		{leafSpec{cns: []string{"db.evil.test"}, ips: []net.IP{ip("127.0.0.1")}}, "127.0.0.1"},
		{leafSpec{cns: []string{"db.evil.test"}, dns: []string{"db.example.test"}}, "db.example.test"},
		{leafSpec{cns: []string{"db.example.test", "db.evil.test"}}, "db.example.test"},
		{leafSpec{dns: []string{"db.example.test"}}, "db.example.test"},
		{leafSpec{dns: []string{"db.evil.test"}}, "db.evil.test"},
		{leafSpec{ips: []net.IP{ip("127.0.0.1")}}, "127.0.0.1"},
	}
	var rows []parityRow
	add := func(what string, issuer *mcert, chain []*mcert, roots rootForm, leaves []leafSpec, hosts []string) {
		for i, l := range leaves {
			leaf := m.leaf(l, issuer)
			srv := sends(t, "leaf+"+strings.Join(subjects(chain), "+"), leaf, chain...)
			rows = append(rows, parityRow{section: "name constraints", what: what + " / leaf " + describeLeaf(l),
				srv: srv, roots: roots, host: hosts[i]})
		}
	}
	var specs []leafSpec
	var hosts []string
	for _, l := range leaves {
		specs, hosts = append(specs, l.spec), append(hosts, l.host)
	}
	for _, c := range cas {
		ca := m.ca("Constrained CA ("+c.what+")", m.root, c.edit)
		add(c.what, ca, []*mcert{ca}, rootForm{name: "root", pem: m.root.pem}, specs, hosts)
	}
	// Where the constraint sits: on the pinned root itself, and on the upper
	// of two intermediates (it binds every certificate below it).
	permitted := func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.test"} }
	some, someHosts := []leafSpec{specs[0], specs[2], specs[9], specs[12]}, []string{hosts[0], hosts[2], hosts[9], hosts[12]}
	root := m.ca("Constrained root (permitted DNS example.test)", nil, permitted)
	add("on the root: permitted DNS example.test", root, nil, rootForm{name: "constrained root", pem: root.pem}, some, someHosts)
	upper := m.ca("Constrained upper CA (permitted DNS example.test)", m.root, permitted)
	lower := m.ca("CA under the constrained one", upper, nil)
	add("on the upper intermediate: permitted DNS example.test", lower, []*mcert{lower, upper}, rootForm{name: "root", pem: m.root.pem}, some, someHosts)
	return rows
}

// issuerRows: basic constraints, path length, extended and plain key usage.
func issuerRows(t *testing.T, m *mpki) []parityRow {
	type shape struct {
		what  string
		chain func() (leaf *mcert, sent []byte)
	}
	viaCA := func(edit func(*x509.Certificate), leafEdit func(*x509.Certificate)) func() (*mcert, []byte) {
		return func() (*mcert, []byte) {
			ca := m.ca("Matrix issuer", m.root, edit)
			s := localLeaf
			s.edit = leafEdit
			leaf := m.leaf(s, ca)
			return leaf, join(leaf.pem, ca.pem)
		}
	}
	direct := func(leafEdit func(*x509.Certificate)) func() (*mcert, []byte) {
		return func() (*mcert, []byte) {
			s := localLeaf
			s.edit = leafEdit
			leaf := m.leaf(s, m.root)
			return leaf, leaf.pem
		}
	}
	shapes := []shape{
		{"issuer CA:FALSE", viaCA(func(c *x509.Certificate) { c.IsCA = false }, nil)},
		{"issuer without basicConstraints", viaCA(func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = false, false }, nil)},
		{"issuer without keyCertSign", viaCA(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCRLSign }, nil)},
		{"issuer pathlen 0, leaf directly", viaCA(func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true }, nil)},
		{"issuer EKU clientAuth only", viaCA(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }, nil)},
		{"issuer EKU serverAuth", viaCA(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, nil)},
		{"pathlen 0 intermediate above another", func() (*mcert, []byte) {
			p0 := m.ca("Matrix pathlen 0 CA", m.root, func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true })
			sub := m.ca("Matrix CA under pathlen 0", p0, nil)
			leaf := m.leaf(localLeaf, sub)
			return leaf, join(leaf.pem, sub.pem, p0.pem)
		}},
		{"issuer EKU anyExtendedKeyUsage", viaCA(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }, nil)},
		{"root pathlen 0 above an intermediate", nil}, // these need their own root: see ownRoot
		{"root EKU clientAuth only", nil},
		{"root EKU anyExtendedKeyUsage", nil},
		{"leaf EKU none", direct(func(c *x509.Certificate) { c.ExtKeyUsage = nil })},
		{"leaf EKU clientAuth", direct(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })},
		{"leaf EKU serverAuth+clientAuth", direct(func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
		})},
		{"leaf EKU anyExtendedKeyUsage", direct(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} })},
		{"leaf key usage none", direct(func(c *x509.Certificate) { c.KeyUsage = 0 })},
		{"leaf key usage keyCertSign only", direct(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign })},
		{"leaf key usage keyAgreement only", direct(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyAgreement })},
		{"leaf is a CA", direct(func(c *x509.Certificate) { c.IsCA, c.KeyUsage = true, c.KeyUsage|x509.KeyUsageCertSign })},
	}
	ownRoot := map[string]func(*x509.Certificate){
		"root pathlen 0 above an intermediate": func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true },
		"root EKU clientAuth only":             func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} },
		"root EKU anyExtendedKeyUsage":         func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} },
	}
	var rows []parityRow
	for _, s := range shapes {
		roots := rootForm{name: "root", pem: m.root.pem}
		chain := s.chain
		if chain == nil {
			root0 := m.ca("Matrix root ("+s.what+")", nil, ownRoot[s.what])
			inter := m.ca("Matrix CA under root ("+s.what+")", root0, nil)
			roots = rootForm{name: "root (" + s.what + ")", pem: root0.pem}
			chain = func() (*mcert, []byte) {
				leaf := m.leaf(localLeaf, inter)
				return leaf, join(leaf.pem, inter.pem)
			}
		}
		leaf, sent := chain()
		srv := &served{name: "leaf and its chain", certPEM: sent, keyPEM: leaf.keyPEM(t)}
		rows = append(rows, parityRow{section: "issuer and usage", what: s.what, srv: srv, roots: roots, host: "localhost"})
	}
	return rows
}

// validityRows: expired and not yet valid leaf, intermediate and root.
func validityRows(t *testing.T, m *mpki) []parityRow {
	past := func(c *x509.Certificate) { c.NotBefore, c.NotAfter = m.now.Add(-48*time.Hour), m.now.Add(-time.Hour) }
	future := func(c *x509.Certificate) { c.NotBefore, c.NotAfter = m.now.Add(time.Hour), m.now.Add(48*time.Hour) }
	var rows []parityRow
	add := func(what string, leaf *mcert, sent []byte, roots rootForm) {
		srv := &served{name: "leaf and its chain", certPEM: sent, keyPEM: leaf.keyPEM(t)}
		rows = append(rows, parityRow{section: "validity", what: what, srv: srv, roots: roots, host: "localhost"})
	}
	rootForm0 := rootForm{name: "root", pem: m.root.pem}
	for what, edit := range map[string]func(*x509.Certificate){"expired": past, "not yet valid": future} {
		s := localLeaf
		s.edit = edit
		leaf := m.leaf(s, m.root)
		add(what+" leaf", leaf, leaf.pem, rootForm0)

		inter := m.ca("Matrix "+what+" intermediate", m.root, edit)
		leaf = m.leaf(localLeaf, inter)
		add(what+" intermediate", leaf, join(leaf.pem, inter.pem), rootForm0)

		root := m.ca("Matrix "+what+" root", nil, edit)
		leaf = m.leaf(localLeaf, root)
		add(what+" root", leaf, leaf.pem, rootForm{name: what + " root", pem: root.pem})
	}
	return rows
}

// keyRows: key types of the leaf and of the CAs.
func keyRows(t *testing.T, m *mpki) []parityRow {
	var rows []parityRow
	rootForm0 := rootForm{name: "root", pem: m.root.pem}
	for _, k := range []string{keyP256, keyP384, keyEd25519, keyRSA2048, keyRSA4096} {
		s := localLeaf
		s.key = k
		leaf := m.leaf(s, m.root)
		srv := &served{name: "leaf", certPEM: leaf.pem, keyPEM: leaf.keyPEM(t)}
		for _, h := range []string{"localhost", "other.test"} {
			rows = append(rows, parityRow{section: "keys", what: "leaf key " + k, srv: srv, roots: rootForm0, host: h})
		}
		root := m.caWithKey("Matrix root ("+k+")", m.keys[k], nil, nil)
		leaf = m.leaf(localLeaf, root)
		srv = &served{name: "leaf", certPEM: leaf.pem, keyPEM: leaf.keyPEM(t)}
		row := parityRow{section: "keys", what: "CA key " + k, srv: srv, roots: rootForm{name: "root (" + k + ")", pem: root.pem}, host: "localhost"}
		if k == keyEd25519 {
			// libpq 15 cannot hash a certificate signed with Ed25519 for
			// tls-server-end-point ("could not find digest for NID UNDEF")
			// and fails SCRAM-SHA-256-PLUS after verifying it: compare the
			// verification alone.
			row.params = map[string]string{"channel_binding": "disable"}
			row.what += " (channel_binding=disable)"
		}
		rows = append(rows, row)
	}
	certPEM, keyPEM := m.rsaPSSLeaf(m.root)
	srv := &served{name: "leaf", certPEM: certPEM, keyPEM: keyPEM}
	for _, h := range []string{"localhost", "other.test"} {
		rows = append(rows, parityRow{section: "keys", what: "leaf key RSA-PSS", srv: srv, roots: rootForm0, host: h, limit: limitRSAPSS})
	}
	return rows
}
