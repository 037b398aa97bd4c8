package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/stretchr/testify/assert"
)

func TestErrorWrapsSentinelAndCause(t *testing.T) {
	cause := errors.New("boom")
	e := &Error{Addr: "127.0.0.1:5432", Stage: StageTLSHandshake, Seen: "something", Err: cause}
	assert.ErrorIs(t, e, shared.ErrNotEncrypted)
	assert.ErrorIs(t, e, cause)
	assert.Contains(t, e.Error(), "127.0.0.1:5432 (TLS handshake): something: boom")
	assert.ErrorIs(t, &Error{Seen: "x"}, shared.ErrNotEncrypted)
}

func TestErrorTransient(t *testing.T) {
	transient := []error{
		io.EOF, fmt.Errorf("read: %w", syscall.ECONNRESET), context.DeadlineExceeded,
		&pgconn.PgError{Code: "57P01"}, &pgconn.PgError{Code: "08006"},
	}
	for _, c := range transient {
		assert.True(t, (&Error{Err: c}).Transient(), "%v", c)
	}
	observed := []error{
		nil, errors.New("x509: certificate signed by unknown authority"), &pgconn.PgError{Code: "42P01"},
		&net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")},
	}
	for _, c := range observed {
		assert.False(t, (&Error{Err: c}).Transient(), "%v", c)
	}
}

func TestVersionName(t *testing.T) {
	assert.Equal(t, "TLSv1.3", VersionName(0x0304))
	assert.Equal(t, "TLSv1.2", VersionName(0x0303))
	assert.Contains(t, VersionName(0x9999), "unknown")
}
