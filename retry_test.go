package pgsecure

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetryAddressesAreGated: the copies of the hosts that addRetry appends
// may be dialled only after a retry was armed.
func TestRetryAddressesAreGated(t *testing.T) {
	cleanEnv(t)
	cfg, err := NewBuilder("host=a.example.com,b.example.com user=u").RootCAFile(writeCA(t)).Config(context.Background())
	require.NoError(t, err)
	cc := cfg.ConnConfig.Copy()
	cc.LookupFunc = func(_ context.Context, host string) ([]string, error) {
		if host == "a.example.com" {
			return []string{"10.0.0.1", "10.0.0.2"}, nil
		}
		return []string{"10.0.0.3"}, nil
	}
	var dialled []string
	base := func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		return nil, errors.New("unreachable")
	}
	cc.DialFunc = base
	e := &enforcer{policy: &tlsPolicy{}}
	e.addRetry(cc)
	entries := hosts(cc)
	require.Len(t, entries, 4, "every host is listed twice")
	assert.Equal(t, []string{"a.example.com", "b.example.com", "a.example.com", "b.example.com"},
		[]string{entries[0].host, entries[1].host, entries[2].host, entries[3].host})

	ctx := context.Background()
	for _, h := range []string{"a.example.com", "b.example.com", "a.example.com", "b.example.com"} {
		_, err := cc.LookupFunc(ctx, h)
		require.NoError(t, err)
	}
	for _, addr := range []string{"10.0.0.1:5432", "10.0.0.2:5432", "10.0.0.3:5432", "10.0.0.1:5432"} {
		_, _ = cc.DialFunc(ctx, "tcp", addr)
	}
	assert.Equal(t, []string{"10.0.0.1:5432", "10.0.0.2:5432", "10.0.0.3:5432"}, dialled, "the retry address was not dialled: nothing armed it")
	_, err = cc.DialFunc(ctx, "tcp", "10.0.0.2:5432")
	assert.ErrorIs(t, err, errRetryNotArmed)
	// The armed path (28P01, fresh credentials, retry) is exercised against
	// a real server by TestRotatedPasswordInvalidatesAndRetries.
}
