package keyfile

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

// The fixtures live in internal/tlspolicy/testdata/keys, shared with the
// root package's client-certificate and pin tests.
func keysDir() string { return filepath.Join("..", "tlspolicy", "testdata", "keys") }

// fixturePassphrase encrypts the key fixtures. It is public test data.
const fixturePassphrase = "pgsecure-fixture-passphrase"

// pinCertFile is the root package's SPKI pin vector, generated with the keys.
const pinCertFile = "pin-vector.crt"

var (
	readFixture = testutil.ReadFixture
	staticPass  = testutil.Passphrase
)

var regenKeys = flag.Bool("regen-keys", false, "regenerate testdata/keys with openssl")

// keyFixture is one key file under testdata/keys and the openssl command
// that writes it (see testdata/keys/README).
type keyFixture struct {
	file string
	// from names the unencrypted fixture that holds the same key.
	from string
	// args are openssl's arguments; IN, OUT and PASS stand for the from
	// file, this file and "pass:" + fixturePassphrase.
	args []string
	// kind is "rsa", "ecdsa" or "ed25519"; "" means pgsecure refuses the
	// format and refusal says why.
	kind      string
	encrypted bool
	refusal   string
}

var keyFixtures = []keyFixture{
	{file: "rsa-pkcs1.key", kind: "rsa", args: []string{"genrsa", "-traditional", "-out", "OUT", "2048"}},
	{file: "ec-sec1.key", kind: "ecdsa", args: []string{"ecparam", "-name", "prime256v1", "-genkey", "-out", "OUT"}},
	{file: "ed25519-pkcs8.key", kind: "ed25519", args: []string{"genpkey", "-algorithm", "ED25519", "-out", "OUT"}},
	{file: "rsa-pkcs8.key", from: "rsa-pkcs1.key", kind: "rsa", args: []string{"pkcs8", "-topk8", "-nocrypt", "-in", "IN", "-out", "OUT"}},
	{file: "ec-pkcs8.key", from: "ec-sec1.key", kind: "ecdsa", args: []string{"pkcs8", "-topk8", "-nocrypt", "-in", "IN", "-out", "OUT"}},
	{file: "rsa-legacy-aes256.key", from: "rsa-pkcs1.key", kind: "rsa", encrypted: true,
		args: []string{"rsa", "-in", "IN", "-aes256", "-traditional", "-passout", "PASS", "-out", "OUT"}},
	{file: "rsa-legacy-des3.key", from: "rsa-pkcs1.key", kind: "rsa", encrypted: true,
		args: []string{"rsa", "-in", "IN", "-des3", "-traditional", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-legacy-aes128.key", from: "ec-sec1.key", kind: "ecdsa", encrypted: true,
		args: []string{"ec", "-in", "IN", "-aes128", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-genpkey-aes256.key", kind: "ecdsa", encrypted: true,
		args: []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "PASS", "-out", "OUT"}},
	{file: "rsa-pbes2-aes128-sha1.key", from: "rsa-pkcs1.key", kind: "rsa", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-v2", "aes128", "-v2prf", "hmacWithSHA1", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-pbes2-aes192-sha224.key", from: "ec-sec1.key", kind: "ecdsa", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-v2", "aes192", "-v2prf", "hmacWithSHA224", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-pbes2-aes256-sha256.key", from: "ec-sec1.key", kind: "ecdsa", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-pbes2-aes256-sha384.key", from: "ec-sec1.key", kind: "ecdsa", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-v2prf", "hmacWithSHA384", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ed25519-pbes2-aes256-sha512.key", from: "ed25519-pkcs8.key", kind: "ed25519", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-v2prf", "hmacWithSHA512", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-pbes2-des3-sha256.key", from: "ec-sec1.key", kind: "ecdsa", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-v2", "des3", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-scrypt-aes256.key", from: "ec-sec1.key", kind: "ecdsa", encrypted: true,
		args: []string{"pkcs8", "-topk8", "-scrypt", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
	{file: "ec-pbes1-sha1-3des.key", from: "ec-sec1.key", encrypted: true, refusal: "outdated scheme",
		args: []string{"pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", "IN", "-passout", "PASS", "-out", "OUT"}},
}

// generateKeyFixtures runs the fixture commands with the real openssl into dir.
func generateKeyFixtures(t *testing.T, openssl, dir string) {
	t.Helper()
	for _, f := range keyFixtures {
		args := make([]string, len(f.args))
		for i, a := range f.args {
			switch a {
			case "IN":
				a = filepath.Join(dir, f.from)
			case "OUT":
				a = filepath.Join(dir, f.file)
			case "PASS":
				a = "pass:" + fixturePassphrase
			}
			args[i] = a
		}
		out, err := exec.Command(openssl, args...).CombinedOutput()
		require.NoError(t, err, "openssl %s: %s", strings.Join(f.args, " "), out)
	}
	pipeline := "openssl x509 -in " + pinCertFile + " -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"
	for _, cmd := range []string{
		"openssl req -x509 -new -key ec-sec1.key -subj /CN=pgsecure-pin-vector -days 36500 -out " + pinCertFile,
		pipeline + " > " + pinCertFile + ".pin",
	} {
		c := exec.Command("sh", "-c", cmd)
		c.Dir = dir
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s: %s", cmd, out)
	}
}

// checkKeyFixtures parses every fixture in dir and checks the result.
func checkKeyFixtures(t *testing.T, dir string) {
	for _, f := range keyFixtures {
		t.Run(f.file, func(t *testing.T) {
			pemBytes := readFixture(t, dir, f.file)
			key, err := Parse(pemBytes, staticPass(fixturePassphrase))
			if f.refusal != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), f.refusal)
				assert.NotErrorIs(t, err, shared.ErrKeyPassphrase)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, f.kind, keyKind(key))
			if f.from != "" {
				base, err := Parse(readFixture(t, dir, f.from), nil)
				require.NoError(t, err)
				assert.True(t, key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(base.Public()),
					"%s holds the key of %s", f.file, f.from)
			}
			if !f.encrypted {
				return
			}
			_, err = Parse(pemBytes, staticPass("not-"+fixturePassphrase))
			require.ErrorIs(t, err, shared.ErrKeyPassphrase)
			_, err = Parse(pemBytes, nil)
			require.ErrorIs(t, err, ErrNoPassphrase)
		})
	}
}

func keyKind(k crypto.Signer) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "rsa"
	case *ecdsa.PrivateKey:
		return "ecdsa"
	case ed25519.PrivateKey:
		return "ed25519"
	}
	return "other"
}

func TestParsePrivateKeyPEMFixtures(t *testing.T) {
	checkKeyFixtures(t, keysDir())
}

// TestParsePrivateKeyPEMFreshOpenSSL generates every format anew with the
// openssl binary (when installed) and parses it; with -regen-keys it
// rewrites testdata/keys instead.
func TestParsePrivateKeyPEMFreshOpenSSL(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl", "openssl") // without it the committed fixtures are tested by TestParsePrivateKeyPEMFixtures
	dir := t.TempDir()
	if *regenKeys {
		dir = keysDir()
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	generateKeyFixtures(t, openssl, dir)
	checkKeyFixtures(t, dir)
}

func TestParsePrivateKeyPEMAsksForPassphraseOnlyWhenEncrypted(t *testing.T) {
	calls := 0
	pass := func() ([]byte, error) { calls++; return []byte(fixturePassphrase), nil }
	_, err := Parse(readFixture(t, keysDir(), "ec-pkcs8.key"), pass)
	require.NoError(t, err)
	assert.Zero(t, calls)
	_, err = Parse(readFixture(t, keysDir(), "ec-pbes2-aes256-sha256.key"), pass)
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
}

// pkcs8Parts opens an encrypted PKCS#8 fixture for tampering.
func pkcs8Parts(t *testing.T, name string) (encryptedPrivateKeyInfo, pbes2Params) {
	t.Helper()
	block, _ := pem.Decode(readFixture(t, keysDir(), name))
	var info encryptedPrivateKeyInfo
	require.NoError(t, unmarshalAll(block.Bytes, &info))
	var params pbes2Params
	require.NoError(t, unmarshalAll(info.Algo.Parameters.FullBytes, &params))
	return info, params
}

func encodePKCS8(t *testing.T, info encryptedPrivateKeyInfo, params pbes2Params) []byte {
	t.Helper()
	p, err := asn1.Marshal(params)
	require.NoError(t, err)
	info.Algo.Parameters = asn1.RawValue{FullBytes: p}
	der, err := asn1.Marshal(info)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

func rawParams(t *testing.T, v any) asn1.RawValue {
	t.Helper()
	b, err := asn1.Marshal(v)
	require.NoError(t, err)
	return asn1.RawValue{FullBytes: b}
}

func TestParsePrivateKeyPEMDamaged(t *testing.T) {
	const fixture = "ec-pbes2-aes256-sha256.key"
	orig := readFixture(t, keysDir(), fixture)
	info, params := pkcs8Parts(t, fixture)
	var kdf pbkdf2Params
	require.NoError(t, unmarshalAll(params.KDF.Parameters.FullBytes, &kdf))
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	require.NoError(t, err)

	tamper := func(edit func(*encryptedPrivateKeyInfo, *pbes2Params, *pbkdf2Params)) []byte {
		i, p, k := info, params, kdf
		i.Data = append([]byte(nil), info.Data...)
		edit(&i, &p, &k)
		p.KDF.Parameters = rawParams(t, k)
		return encodePKCS8(t, i, p)
	}
	cases := []struct {
		name     string
		pem      []byte
		wrongKey bool // indistinguishable from a wrong passphrase
		want     string
	}{
		{"truncated file", orig[:len(orig)/2], false, "no PEM private key block"},
		{"flipped ciphertext byte", tamper(func(i *encryptedPrivateKeyInfo, _ *pbes2Params, _ *pbkdf2Params) { i.Data[len(i.Data)-1] ^= 0x5a }), true, "decrypt"},
		{"ciphertext cut by a few bytes", tamper(func(i *encryptedPrivateKeyInfo, _ *pbes2Params, _ *pbkdf2Params) { i.Data = i.Data[:len(i.Data)-3] }), false, "whole number of cipher blocks"},
		{"salt changed", tamper(func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) { k.Salt = []byte("othersalt") }), true, "decrypt"},
		{"unknown cipher", tamper(func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.Scheme.Algorithm = asn1.ObjectIdentifier{1, 2, 3, 4}
		}), false, "unsupported key encryption cipher 1.2.3.4"},
		{"short IV", tamper(func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.Scheme.Parameters = rawParams(t, []byte("short"))
		}), false, "IV is 5 bytes, want 16"},
		{"unknown PRF", tamper(func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) {
			k.PRF.Algorithm = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
		}), false, "unsupported PBKDF2 PRF"},
		{"absurd iteration count", tamper(func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) { k.Iterations = 1 << 30 }), false, "iteration count"},
		{"key length not the cipher's", tamper(func(_ *encryptedPrivateKeyInfo, _ *pbes2Params, k *pbkdf2Params) { k.KeyLength = 16 }), false, "does not fit the cipher"},
		{"unknown KDF", tamper(func(_ *encryptedPrivateKeyInfo, p *pbes2Params, _ *pbkdf2Params) {
			p.KDF.Algorithm = asn1.ObjectIdentifier{1, 2, 3}
		}), false, "unsupported key derivation function"},
		{"garbage unencrypted key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER at all")}), false, "does not parse"},
		{"X25519 cannot sign", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER}), false, "cannot sign"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.pem, staticPass(fixturePassphrase))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, c.wrongKey, errors.Is(err, shared.ErrKeyPassphrase), "matches shared.ErrKeyPassphrase: %v", err)
			assert.NotContains(t, err.Error(), fixturePassphrase)
			testutil.AssertNoKeyMaterial(t, err.Error(), c.pem)
		})
	}
}

func TestParsePrivateKeyPEMScryptLimits(t *testing.T) {
	info, params := pkcs8Parts(t, "ec-scrypt-aes256.key")
	var sp scryptParams
	require.NoError(t, unmarshalAll(params.KDF.Parameters.FullBytes, &sp))
	assert.Equal(t, 16384, sp.N, "openssl's default cost")
	sp.N = 1 << 24 // 2 GiB with r=8
	params.KDF.Parameters = rawParams(t, sp)
	_, err := Parse(encodePKCS8(t, info, params), staticPass(fixturePassphrase))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more work than pgsecure allows")
}

func TestParsePrivateKeyPEMSkipsOtherBlocks(t *testing.T) {
	// A certificate and EC parameters before the key, as in combined files.
	in := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), readFixture(t, keysDir(), "ec-sec1.key")...)
	key, err := Parse(in, nil)
	require.NoError(t, err)
	assert.Equal(t, "ecdsa", keyKind(key))
}

func TestUnpad(t *testing.T) {
	block := func(tail ...byte) []byte { return append(make([]byte, 16-len(tail)), tail...) }
	cases := []struct {
		name string
		in   []byte
		n    int // bytes removed; -1 when refused
	}{
		{"one byte", block(1), 1},
		{"three bytes", block(3, 3, 3), 3},
		{"full block", append(make([]byte, 16), block(16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16)...), 16},
		{"zero", block(0), -1},
		{"longer than a block", block(17), -1},
		{"inconsistent", block(2, 3, 3), -1},
		{"inconsistent at the far end", block(16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 15), -1},
		{"not whole blocks", make([]byte, 15), -1},
		{"empty", nil, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, ok := unpad(c.in, 16)
			if c.n < 0 {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Len(t, out, len(c.in)-c.n)
		})
	}
}
