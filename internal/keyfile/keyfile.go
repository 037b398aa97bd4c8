// Package keyfile reads TLS client keys as libpq's sslkey does: PKCS#1,
// SEC 1 and PKCS#8 PEM blocks, unencrypted or encrypted (OpenSSL's legacy
// PEM encryption and encrypted PKCS#8 with PBES2). Its errors never contain
// the passphrase or key material; the caller adds which file and setting
// they concern.
package keyfile

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"

	"github.com/pgsecure/pgsecure/internal/shared"
)

// PassphraseError is the cause recorded when decryption yields no valid key:
// the passphrase is wrong or the encrypted data is damaged (the formats have
// no integrity check that could tell the two apart). It matches
// pgsecure.ErrKeyPassphrase with errors.Is.
type PassphraseError struct{ detail string }

func (e *PassphraseError) Error() string        { return e.detail }
func (e *PassphraseError) Is(target error) bool { return target == shared.ErrKeyPassphrase }

// PassphraseSourceError is a failure of the passphrase callback itself (a
// secret store that could not be reached, say): not a configuration problem.
type PassphraseSourceError struct{ Err error }

func (e *PassphraseSourceError) Error() string { return "getting the key passphrase: " + e.Err.Error() }
func (e *PassphraseSourceError) Unwrap() error { return e.Err }

// ErrNoPassphrase is returned for an encrypted key when no passphrase (or an
// empty one) was given.
var ErrNoPassphrase = errors.New("the key is encrypted and no passphrase was given")

// Parse returns the first private key in pemBytes. It reads
// PKCS#1 ("RSA PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and PKCS#8 ("PRIVATE
// KEY": RSA, ECDSA, Ed25519) blocks, unencrypted or encrypted: OpenSSL's
// legacy PEM encryption (Proc-Type: 4,ENCRYPTED) and encrypted PKCS#8
// ("ENCRYPTED PRIVATE KEY", PBES2 with PBKDF2 or scrypt and AES-CBC or
// DES-EDE3-CBC). Blocks of other types (EC PARAMETERS, CERTIFICATE) are
// skipped.
//
// passphrase is called only for an encrypted key; nil means none is
// available. A passphrase that decrypts to no valid key yields an error
// matching pgsecure.ErrKeyPassphrase. Errors never contain the passphrase or
// key material; the caller turns them into messages that name the file.
func Parse(pemBytes []byte, passphrase func() ([]byte, error)) (crypto.Signer, error) {
	block := firstKeyBlock(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM private key block found (expected RSA PRIVATE KEY, EC PRIVATE KEY, PRIVATE KEY or ENCRYPTED PRIVATE KEY; " +
			"a DER key can be converted with: openssl pkey -inform der -in KEY -out KEY.pem)")
	}
	encrypted := block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] == "4,ENCRYPTED"
	if !encrypted {
		return parseKeyDER(block.Type, block.Bytes)
	}
	if passphrase == nil {
		return nil, ErrNoPassphrase
	}
	pass, err := passphrase()
	if err != nil {
		return nil, &PassphraseSourceError{err}
	}
	if len(pass) == 0 {
		return nil, ErrNoPassphrase
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		return decryptPKCS8(block.Bytes, pass)
	}
	der, err := decryptLegacyPEM(block, pass)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyDER(block.Type, der)
	clear(der)
	if err != nil {
		return nil, &PassphraseError{"the decrypted data is not a private key"}
	}
	return key, nil
}

func firstKeyBlock(b []byte) *pem.Block {
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			return nil
		}
		switch block.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return block
		}
		b = rest
	}
}

// parseKeyDER parses an unencrypted key of the given PEM type.
func parseKeyDER(pemType string, der []byte) (crypto.Signer, error) {
	var key any
	var err error
	switch pemType {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default:
		key, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil, fmt.Errorf("the %s block does not parse: %w", pemType, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign, so it cannot be a TLS client key (use RSA, ECDSA or Ed25519)", key)
	}
	return signer, nil
}

// decryptLegacyPEM decrypts OpenSSL's traditional PEM encryption
// (Proc-Type: 4,ENCRYPTED and DEK-Info headers, as `openssl genrsa -aes256
// -traditional` writes). crypto/x509 deprecates DecryptPEMBlock, its only
// reader, because the format derives the key with one round of MD5 and does
// not authenticate the ciphertext. pgsecure reads it anyway because libpq
// does and such keys are common; this is the only call. Prefer encrypted
// PKCS#8 (`openssl pkcs8 -topk8 -v2 aes256`).
func decryptLegacyPEM(block *pem.Block, pass []byte) ([]byte, error) {
	//lint:ignore SA1019 the only reader of the legacy format; see the doc comment
	der, err := x509.DecryptPEMBlock(block, pass) //nolint:staticcheck // see the doc comment
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, &PassphraseError{"decryption failed (bad padding)"}
	}
	if err != nil {
		return nil, fmt.Errorf("legacy encrypted PEM: %w", err)
	}
	return der, nil
}

// Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo) with PBES2 (RFC 8018).
var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11} // RFC 7914
)

// pbkdf2PRFs maps the HMAC PRF OIDs of RFC 8018 to their hash.
var pbkdf2PRFs = map[string]func() hash.Hash{
	"1.2.840.113549.2.7":  sha1.New, // hmacWithSHA1, the default when absent
	"1.2.840.113549.2.8":  sha256.New224,
	"1.2.840.113549.2.9":  sha256.New,
	"1.2.840.113549.2.10": sha512.New384,
	"1.2.840.113549.2.11": sha512.New,
}

type pbeCipher struct {
	keyLen   int
	newBlock func(key []byte) (cipher.Block, error)
}

var pbes2Ciphers = map[string]pbeCipher{
	"2.16.840.1.101.3.4.1.2":  {16, aes.NewCipher},
	"2.16.840.1.101.3.4.1.22": {24, aes.NewCipher},
	"2.16.840.1.101.3.4.1.42": {32, aes.NewCipher},
	"1.2.840.113549.3.7":      {24, des.NewTripleDESCipher},
}

// Limits on the work a key file may ask for, far above what OpenSSL writes
// (PBKDF2: 2048 iterations; scrypt: N=16384, r=8, p=1, i.e. 16 MiB). They are
// variables only so that the fuzz test can lower them.
var (
	maxPBKDF2Iterations = 10_000_000
	maxScryptWork       = 1 << 28 // 128·N·r·p: bytes of memory when p=1
)

type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt      []byte
	N, R, P   int
	KeyLength int `asn1:"optional"`
}

// decryptPKCS8 decrypts an "ENCRYPTED PRIVATE KEY" block.
func decryptPKCS8(der, pass []byte) (crypto.Signer, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalAll(der, &info); err != nil {
		return nil, fmt.Errorf("the ENCRYPTED PRIVATE KEY block does not parse: %w", err)
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("the key is encrypted with %s, an outdated scheme (PBES1 or PKCS#12) that pgsecure does not read; "+
			"re-encrypt it with: openssl pkcs8 -topk8 -v2 aes256 -in KEY -out NEW.key", info.Algo.Algorithm)
	}
	var params pbes2Params
	if err := unmarshalAll(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("the PBES2 parameters do not parse: %w", err)
	}
	c, ok := pbes2Ciphers[params.Scheme.Algorithm.String()]
	if !ok {
		return nil, fmt.Errorf("unsupported key encryption cipher %s (supported: AES-128/192/256-CBC, DES-EDE3-CBC)", params.Scheme.Algorithm)
	}
	var iv []byte
	if err := unmarshalAll(params.Scheme.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("the cipher's IV does not parse: %w", err)
	}
	key, err := deriveKey(params.KDF, pass, c.keyLen)
	if err != nil {
		return nil, err
	}
	block, err := c.newBlock(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("the cipher's IV is %d bytes, want %d", len(iv), bs)
	}
	if len(info.Data) == 0 || len(info.Data)%bs != 0 {
		return nil, errors.New("the encrypted data is not a whole number of cipher blocks (the file is truncated or damaged)")
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	defer clear(plain)
	plain, ok = unpad(plain, bs)
	if !ok {
		return nil, &PassphraseError{"decryption failed (bad padding)"}
	}
	k, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, &PassphraseError{"the decrypted data is not a private key"}
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign, so it cannot be a TLS client key (use RSA, ECDSA or Ed25519)", k)
	}
	return signer, nil
}

// deriveKey runs the PBES2 key derivation function.
func deriveKey(kdf pkix.AlgorithmIdentifier, pass []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if err := readKDFParams("PBKDF2", kdf.Parameters.FullBytes, &p, keyLen); err != nil {
			return nil, err
		}
		if p.Iterations < 1 || p.Iterations > maxPBKDF2Iterations {
			return nil, fmt.Errorf("PBKDF2 iteration count %d is outside 1..%d", p.Iterations, maxPBKDF2Iterations)
		}
		prf := sha1.New
		if len(p.PRF.Algorithm) > 0 {
			var ok bool
			if prf, ok = pbkdf2PRFs[p.PRF.Algorithm.String()]; !ok {
				return nil, fmt.Errorf("unsupported PBKDF2 PRF %s (supported: hmacWithSHA1, -SHA224, -SHA256, -SHA384, -SHA512)", p.PRF.Algorithm)
			}
		}
		return pbkdf2.Key(prf, string(pass), p.Salt, p.Iterations, keyLen)
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if err := readKDFParams("scrypt", kdf.Parameters.FullBytes, &p, keyLen); err != nil {
			return nil, err
		}
		if p.N < 2 || p.R < 1 || p.P < 1 || p.N > maxScryptWork/128/p.R/p.P {
			return nil, fmt.Errorf("scrypt parameters N=%d r=%d p=%d ask for more work than pgsecure allows (128·N·r·p at most %d MiB)", p.N, p.R, p.P, maxScryptWork>>20)
		}
		return scrypt.Key(pass, p.Salt, p.N, p.R, p.P, keyLen)
	}
	return nil, fmt.Errorf("unsupported key derivation function %s (supported: PBKDF2, scrypt)", kdf.Algorithm)
}

func (p *pbkdf2Params) keyLength() int { return p.KeyLength }
func (p *scryptParams) keyLength() int { return p.KeyLength }

// readKDFParams parses a KDF's parameters and checks their optional key
// length against the cipher's.
func readKDFParams(name string, der []byte, p interface{ keyLength() int }, keyLen int) error {
	if err := unmarshalAll(der, p); err != nil {
		return fmt.Errorf("the %s parameters do not parse: %w", name, err)
	}
	if n := p.keyLength(); n != 0 && n != keyLen {
		return fmt.Errorf("the %s key length %d does not fit the cipher (%d)", name, n, keyLen)
	}
	return nil
}

// unpad removes PKCS#7 padding. It inspects the whole last block whatever
// the padding length, so its timing does not depend on where the padding
// check fails.
func unpad(b []byte, blockSize int) ([]byte, bool) {
	if len(b) == 0 || len(b)%blockSize != 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, blockSize)
	for i := 1; i <= blockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		same := subtle.ConstantTimeByteEq(b[len(b)-i], byte(n))
		good &= same | (inPad ^ 1)
	}
	if good != 1 {
		return nil, false
	}
	return b[:len(b)-n], true
}

// unmarshalAll is asn1.Unmarshal refusing trailing data.
func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data after the ASN.1 structure")
	}
	return nil
}
