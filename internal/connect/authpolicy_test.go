package connect

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRequireAuth(t *testing.T) {
	p, err := ParseRequireAuth("scram-sha-256")
	require.NoError(t, err)
	assert.False(t, p.WeakerThanSCRAM())
	p, err = ParseRequireAuth("md5, scram-sha-256")
	require.NoError(t, err)
	assert.Equal(t, "scram-sha-256,md5", p.String())
	assert.True(t, p.WeakerThanSCRAM())
	p, err = ParseRequireAuth("!password,!md5,!none")
	require.NoError(t, err)
	assert.Equal(t, "scram-sha-256,gss,sspi,oauth", p.String())
	for _, bad := range []string{"md5,!password", "kerberos", "!scram-sha-256,!md5,!password,!none,!gss,!sspi,!oauth"} {
		_, err = ParseRequireAuth(bad)
		assert.Error(t, err, bad)
	}
}

func TestErrorFields(t *testing.T) {
	body := []byte("SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00")
	code, msg := errorFields(body)
	assert.Equal(t, "28P01", code)
	assert.Equal(t, "password authentication failed", msg)
	code, _ = errorFields([]byte("SFATAL\x00\x00"))
	assert.Equal(t, "", code)
	code, _ = errorFields([]byte("Cunterminated"))
	assert.Equal(t, "", code)
}
