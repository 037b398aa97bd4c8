package secrets

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretContentCannotDeclareALoginToken: only code sets LoginToken; a
// secret's content that names it (in any spelling) yields a password.
func TestSecretContentCannotDeclareALoginToken(t *testing.T) {
	for _, body := range []string{
		`{"username":"app","password":"pw","LoginToken":true}`,
		`{"username":"app","password":"pw","login_token":true,"loginToken":true}`,
	} {
		c, err := ParseJSON([]byte(body))
		require.NoError(t, err)
		assert.False(t, c.LoginToken, body)
	}
}

func TestLoginTokenIsShownButNotTheToken(t *testing.T) {
	c := Credentials{User: "app", Password: NewSecret(testSecret), LoginToken: true, Source: "rdsiam://app@db:5432"}
	assert.Contains(t, c.String(), "LoginToken:true")
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", c, c, c), testSecret)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "creds", c)
	assert.Contains(t, buf.String(), `"login_token":true`)
	assert.NotContains(t, buf.String(), testSecret)
	assert.False(t, c.Equal(Credentials{User: "app", Password: NewSecret(testSecret), Source: "rdsiam://app@db:5432"}))
}
