package pgsecure

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRequireAuth(t *testing.T) {
	p, err := parseRequireAuth("scram-sha-256")
	require.NoError(t, err)
	assert.False(t, p.weakerThanSCRAM())
	p, err = parseRequireAuth("md5, scram-sha-256")
	require.NoError(t, err)
	assert.Equal(t, "scram-sha-256,md5", p.String())
	assert.True(t, p.weakerThanSCRAM())
	p, err = parseRequireAuth("!password,!md5,!none")
	require.NoError(t, err)
	assert.Equal(t, "scram-sha-256,gss,sspi,oauth", p.String())
	for _, bad := range []string{"md5,!password", "kerberos", "!scram-sha-256,!md5,!password,!none,!gss,!sspi,!oauth"} {
		_, err = parseRequireAuth(bad)
		assert.Error(t, err, bad)
	}
}

func TestSQLState(t *testing.T) {
	body := []byte("SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00")
	assert.Equal(t, "28P01", sqlstate(body))
	assert.Equal(t, "", sqlstate([]byte("SFATAL\x00\x00")))
	assert.Equal(t, "", sqlstate([]byte("Cunterminated")))
}
