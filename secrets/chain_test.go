package secrets

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChainFallsThroughOnlyOnNotFound(t *testing.T) {
	missing := EnvFrom(mapLookup(nil))
	file := File(t.TempDir() + "/absent")
	good := Static(Credentials{User: "app", Password: NewSecret(testSecret), Source: "static"})

	c, err := Chain(missing, file, good).Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "static", c.Source)

	broken := EnvFrom(mapLookup(map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": "x"}))
	_, err = Chain(missing, broken, good).Credentials(t.Context())
	require.ErrorIs(t, err, ErrInvalid, "a misconfigured source stops the chain")
	assert.False(t, errors.Is(err, ErrNotFound), "the outcome is not 'not found'")
	assert.Contains(t, err.Error(), "source 2 of 3 failed, so later sources were not tried")
	assert.Contains(t, err.Error(), "PGUSER is not set", "earlier failures are listed")
	assert.NotContains(t, err.Error(), testSecret)
}

func TestChainAllNotFoundListsEverySource(t *testing.T) {
	dir := t.TempDir()
	anon := SourceFunc(func(context.Context) (Credentials, error) { return Credentials{}, ErrNotFound })
	_, err := Chain(EnvFrom(mapLookup(nil)), File(dir+"/absent"), anon).Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound)
	var pe interface{ Unwrap() []error }
	require.ErrorAs(t, err, &pe)
	for _, want := range []string{"no source has credentials", "[pgsecure: env: PGUSER is not set",
		"file:" + dir + "/absent: read: not found", "[secrets.SourceFunc: pgsecure/secrets: secret not found]"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestChainStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	second := SourceFunc(func(context.Context) (Credentials, error) { called = true; return Credentials{}, nil })
	_, err := Chain(EnvFrom(mapLookup(nil)), second).Credentials(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, called)
}

func TestChainEmpty(t *testing.T) {
	_, err := Chain().Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound)
	Chain().(Invalidator).Invalidate(Credentials{}) // must not panic
}

func TestChainInvalidateAndClose(t *testing.T) {
	first := newScripted(func(context.Context, int64) (Credentials, error) { return Credentials{}, ErrNotFound })
	second := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	ch := Chain(first, second)
	c, err := ch.Credentials(t.Context())
	require.NoError(t, err)
	ch.(Invalidator).Invalidate(c)
	assert.Empty(t, first.invalidated)
	assert.Equal(t, []Credentials{c}, second.invalidated, "goes to the source that produced the credentials")
	require.NoError(t, ch.(Closer).Close(t.Context()))
	assert.Equal(t, 1, first.closed)
	assert.Equal(t, 1, second.closed)
}

func TestChainPanicsOnNilSource(t *testing.T) {
	assert.PanicsWithValue(t, "pgsecure/secrets: Chain: source 1 is nil", func() { Chain(Env(), nil) })
}
