package keyfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzKeyPassphrase is the passphrase offered for every fuzzed key; no error
// may contain it.
const fuzzKeyPassphrase = "Fuzz-Key-Passphrase-41"

// FuzzParse feeds arbitrary PEM-ish input (seeded with every
// committed key fixture, encrypted or not) to the key parser: it must not
// panic, and its errors must echo neither the passphrase nor key bytes.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(keysDir(), "*.key"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	// Mutated iteration counts and scrypt costs up to the production limits
	// take seconds each; the parser's handling of them is the same at lower
	// limits, which keep every input fast.
	oldIter, oldWork := maxPBKDF2Iterations, maxScryptWork
	maxPBKDF2Iterations, maxScryptWork = 20_000, 1<<22
	f.Cleanup(func() { maxPBKDF2Iterations, maxScryptWork = oldIter, oldWork })
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data, func() ([]byte, error) { return []byte(fuzzKeyPassphrase), nil })
		if err == nil {
			return
		}
		msg := err.Error()
		if strings.Contains(msg, fuzzKeyPassphrase) {
			t.Fatalf("error contains the passphrase: %q", msg)
		}
		if strings.Contains(msg, "PRIVATE KEY-----") && len(data) > 64 && strings.Contains(msg, string(data[len(data)/2:len(data)/2+32])) {
			t.Fatalf("error echoes key material: %q", msg)
		}
	})
}
