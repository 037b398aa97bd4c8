package pgsecure

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBuilderNeverPrintsItsSecrets(t *testing.T) {
	cleanEnv(t)
	b := NewBuilder("postgres://app:" + testPassword + "@db.example.com/db?sslpassword=" + testPassword).RootCAFile("/etc/ca.crt")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("builder", "b", b)
	for _, out := range []string{
		fmt.Sprint(b), fmt.Sprintf("%v %+v %#v %s %q", b, b, b, b, b), b.String(), logs.String(),
	} {
		assert.NotContains(t, out, testPassword)
		assert.Contains(t, out, "REDACTED")
	}
	_, err := b.Config(context.Background())
	if err != nil {
		assert.NotContains(t, err.Error(), testPassword)
	}
}
