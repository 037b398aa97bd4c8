package libpq

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLibpqLookup(t *testing.T) {
	t.Parallel()
	var asked []string
	next := func(_ context.Context, host string) ([]string, error) {
		asked = append(asked, host)
		return []string{"10.9.9.9"}, nil
	}
	lookup := NumericLookup(next)
	for host, want := range map[string]string{"192.000.002.001": "192.0.2.1", "127.1": "127.0.0.1", "0x7f.0.0.1": "127.0.0.1", "db.example.com": "10.9.9.9"} {
		got, err := lookup(context.Background(), host)
		require.NoError(t, err)
		assert.Equal(t, []string{want}, got, host)
	}
	assert.Equal(t, []string{"db.example.com"}, asked, "only the DNS name reaches the resolver")
}
