package vaultit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

// fmtAll renders err the ways a program might log it.
func fmtAll(err error) string {
	return fmt.Sprintf("%s|%v|%+v|%#v|%q", err, err, err, err, err)
}

// waitFor waits until the log contains text.
func waitFor(t *testing.T, s *testutil.LogBuffer, text string, within time.Duration) {
	t.Helper()
	if poll(within, 50*time.Millisecond, func() bool { return strings.Contains(s.String(), text) }) {
		return
	}
	t.Fatalf("log never contained %q; log:\n%s", text, s.String())
}

func TestLogsAndErrorsCarryNoSecrets(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.dynamicRole(t, "short", "3s", "1m")
	ctx := context.Background()
	roleID, secretID := e.appRole(t, "app", "1h")
	var logs testutil.LogBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	c, err := vaultsrc.NewClient(e.addr, e.caFile, vaultsrc.AppRoleAuth(roleID, secretID))
	require.NoError(t, err)
	src, err := vaultsrc.Database(c, "database", "short", vaultsrc.WithLogger(logger), vaultsrc.WithRevokeOnClose())
	require.NoError(t, err)

	first, err := src.Credentials(ctx)
	require.NoError(t, err)
	waitFor(t, &logs, "lease renewed", 4*time.Second)

	// Revoked behind the source's back: the next renewal fails for good and
	// the credentials are replaced.
	require.NoError(t, e.root.Sys().Revoke(first.Version))
	waitFor(t, &logs, "replacing the database credentials", 5*time.Second)
	second, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first.Version, second.Version)
	require.NoError(t, src.Close(ctx))
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, vaultsrc.ErrClosed)
	waitFor(t, &logs, "lease revoked", time.Second)

	text := logs.String()
	assert.Contains(t, text, first.Version, "records name the lease")
	for name, secret := range map[string]string{
		"first password": first.Password.Reveal(), "second password": second.Password.Reveal(),
		"client token": c.API().Token(), "root token": e.root.Token(), "secret ID": secretID,
	} {
		assert.NotContains(t, text, secret, "log contains the %s", name)
	}

	// Credentials and the source print without the password.
	for _, s := range []string{fmt.Sprint(first), fmt.Sprintf("%+v %#v", first, first), fmt.Sprint(src)} {
		assert.NotContains(t, s, first.Password.Reveal())
	}
	var out bytes.Buffer
	slog.New(slog.NewTextHandler(&out, nil)).Info("creds", "creds", second)
	assert.NotContains(t, out.String(), second.Password.Reveal())
	assert.Contains(t, out.String(), secrets.Redacted)
}
