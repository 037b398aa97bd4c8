package pgsecure

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBuilderNeverPrintsItsSecrets: a Builder printed with any verb or
// logged shows neither the password (connection string, sslpassword) nor an
// in-memory client key.
func TestBuilderNeverPrintsItsSecrets(t *testing.T) {
	cleanEnv(t)
	b := NewBuilder("postgres://app:"+testPassword+"@db.example.com/db?sslpassword="+testPassword).RootCAFile("/etc/ca.crt").
		ClientCertPEM([]byte("cert"), []byte("-----BEGIN PRIVATE KEY-----\n"+testPassword+"\n-----END PRIVATE KEY-----\n"))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("builder", "b", b)
	for _, out := range []string{
		fmt.Sprint(b), fmt.Sprintf("%v %+v %#v", b, b, b), logs.String(),
	} {
		assert.NotContains(t, out, testPassword) // the connection string and key are secrets.Secret: a pointer, never the value
		assert.NotContains(t, out, "PRIVATE KEY")
	}
	_, err := b.Config(context.Background())
	if err != nil {
		assert.NotContains(t, err.Error(), testPassword)
	}
}
