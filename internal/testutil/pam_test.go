package testutil

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPAMLoginAsksForCleartextAndChecksThePassword: a role routed through
// UsePAM logs in with what Check accepts, is refused otherwise, and each
// attempt is recorded with what the client sent; other roles keep SCRAM.
func TestPAMLoginAsksForCleartextAndChecksThePassword(t *testing.T) {
	pki := NewPKI(t)
	pg := pki.StartPostgres(t, PGOptions{})
	pg.CreateRole(t, "app", "app-password")
	pg.Exec(t, "CREATE ROLE iam LOGIN")
	pam := pg.UsePAM(t, PAMLogin{Roles: []string{"iam"}, Check: func(user, password string) error {
		if user == "iam" && password == "good-token" {
			return nil
		}
		return errors.New("not the token")
	}})

	conn, err := connect(t, verifyFull(pg, "iam", "good-token", "postgres", pki.CAFile)+"&require_auth=password")
	require.NoError(t, err, "the server asks for a cleartext password and PAM accepts it")
	assert.True(t, sslInUse(t, conn))

	_, err = connect(t, verifyFull(pg, "iam", "bad-token", "postgres", pki.CAFile))
	requireSQLState(t, err, "28000") // PostgreSQL answers every failed PAM login with 28000, as RDS does
	assert.Contains(t, err.Error(), "PAM authentication failed")

	_, err = connect(t, verifyFull(pg, "app", "app-password", "postgres", pki.CAFile)+"&require_auth=scram-sha-256")
	require.NoError(t, err, "roles not named keep scram-sha-256")

	got := pam.Attempts()
	require.Len(t, got, 2)
	assert.Equal(t, PAMAttempt{User: "iam", Password: "good-token"}, got[0])
	assert.Equal(t, "bad-token", got[1].Password)
	assert.Error(t, got[1].Err)
}
