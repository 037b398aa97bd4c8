package pool

import (
	"context"
	"time"

	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/verify"
)

// Events receives what happens to a pool's connections and credentials;
// the root package turns each call into its public event.
type Events interface {
	ConnectionVerified(ctx context.Context, r verify.Report, t connect.Timings)
	ConnectionRefused(ctx context.Context, r connect.Refusal)
	LoginFailed(ctx context.Context, f LoginFailure)
	CertificateExpiring(ctx context.Context, role string, r verify.Report, c verify.Certificate, daysLeft int)
	SecretFetched(ctx context.Context, source string, expires time.Time)
	SecretFailed(ctx context.Context, source string, err error)
}

// LoginFailure is one failed login, with the credential source it used
// ("" for the connection string).
type LoginFailure struct {
	Time                         time.Time
	Host, User, SQLState, Source string
	Err                          error
}
