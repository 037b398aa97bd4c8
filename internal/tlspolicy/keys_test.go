package tlspolicy

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/keyfile"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

// The key fixtures in testdata/keys are written and parsed format by format
// by package internal/keyfile's tests; the root's tests use them for client
// certificates, pins and the error messages of keyProblem.

// fixturePassphrase encrypts the key fixtures. It is public test data.
const fixturePassphrase = testutil.FixturePassphrase

func keysDir() string { return filepath.Join("testdata", "keys") }

var (
	readFixture = testutil.ReadFixture
	staticPass  = testutil.Passphrase
)

func TestKeyPassphraseProblems(t *testing.T) {
	t.Parallel()
	enc := readFixture(t, keysDir(), "ec-pbes2-aes256-sha256.key")

	_, err := keyfile.Parse(enc, staticPass(""))
	require.ErrorIs(t, err, keyfile.ErrNoPassphrase, "an empty passphrase counts as none")

	storeDown := errors.New("secret store unreachable")
	_, err = keyfile.Parse(enc, func() ([]byte, error) { return nil, storeDown })
	require.ErrorIs(t, err, storeDown)
	reported := keyProblem("sslkey", "sslpassword", "file client.key", err)
	require.ErrorIs(t, reported, storeDown)
	assert.NotErrorIs(t, reported, shared.ErrInsecureConfig, "an unreachable passphrase source is not a configuration problem")
	assert.Contains(t, reported.Error(), "client.key")
}

func TestKeyProblemMessages(t *testing.T) {
	t.Parallel()
	enc := readFixture(t, keysDir(), "rsa-legacy-aes256.key")
	wrong := "Wr0ng-Passphrase-Value"
	_, err := keyfile.Parse(enc, staticPass(wrong))
	reported := keyProblem("sslkey", "sslpassword", "file /etc/app/client.key", err)
	require.ErrorIs(t, reported, shared.ErrKeyPassphrase)
	require.ErrorIs(t, reported, shared.ErrInsecureConfig)
	msg := reported.Error()
	assert.True(t, strings.HasPrefix(msg, "pgsecure: "), msg)
	assert.Contains(t, msg, "wrong passphrase for key file /etc/app/client.key")
	assert.NotContains(t, msg, wrong)
	testutil.AssertNoKeyMaterial(t, msg, enc)

	_, err = keyfile.Parse(enc, nil)
	msg = keyProblem("sslkey", "sslpassword", "file /etc/app/client.key", err).Error()
	assert.Contains(t, msg, "is encrypted and no passphrase was given")
	assert.Contains(t, msg, "sslpassword")
	assert.Contains(t, msg, "ClientKeyPassphrase")
}
