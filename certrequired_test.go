package pgsecure_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientCertificateRequiredIsStructural: whether a refused login is
// "client certificate required" is told from what happened, not from the
// server's (translatable) message: the server asked for a certificate in
// the TLS handshake, none was configured, and it refused (28000) before
// any authentication request. A server that never asked for one, refusing
// a role whose very name contains "certificate", is a missing pg_hba.conf
// entry, and the fix says so.
func TestClientCertificateRequiredIsStructural(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions()) // no ssl_ca_file: the server asks for no certificate
	const role = "certificate_holder"
	pg.CreateRole(t, role, appPassword)
	pg.SetHBA(t, "hostssl all app 127.0.0.1/32 scram-sha-256", "hostssl all app ::1/128 scram-sha-256")
	ctx := ctxT(t)
	_, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", role, appPassword, pg.Port)).
		RootCAFile(pki.CAFile).Build(ctx)
	require.Error(t, err)
	var ccr *pgsecure.ClientCertificateRequiredError
	assert.False(t, errorsAs(err, &ccr), "the server never asked for a certificate: %v", err)
	assert.Contains(t, err.Error(), "hostssl")
	assert.NotContains(t, err.Error(), appPassword)
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
