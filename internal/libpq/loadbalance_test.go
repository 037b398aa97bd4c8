package libpq

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShuffledLookup: the addresses of one name come back in every order,
// none lost or duplicated; errors pass through.
func TestShuffledLookup(t *testing.T) {
	t.Parallel()
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	lookup := shuffledLookup(func(context.Context, string) ([]string, error) { return addrs, nil }, rand.Shuffle)
	firsts := map[string]int{}
	for range 300 {
		got, err := lookup(context.Background(), "db")
		require.NoError(t, err)
		assert.ElementsMatch(t, addrs, got)
		firsts[got[0]]++
	}
	assert.Len(t, firsts, 3, "each address comes first sometimes: %v", firsts)
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, addrs, "the resolver's slice is not modified")

	failing := shuffledLookup(func(context.Context, string) ([]string, error) { return nil, context.Canceled }, rand.Shuffle)
	_, err := failing(context.Background(), "db")
	assert.ErrorIs(t, err, context.Canceled)
}
