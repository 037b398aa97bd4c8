package uriparam

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, raw string) (map[string]string, error) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return Parse(u, []string{"prefix", "region"}, []string{"token"})
}

func TestParse(t *testing.T) {
	q, err := parse(t, "env:?prefix=APP_")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"prefix": "APP_"}, q)

	_, err = parse(t, "env:?prefx=APP_")
	require.EqualError(t, err, `parameter "prefx" is not known; did you mean "prefix"? (known: prefix, region)`)

	_, err = parse(t, "env:?prefix=a&prefix=b")
	require.EqualError(t, err, `parameter "prefix" appears 2 times`)

	_, err = parse(t, "env:?token=s.hunter2")
	require.ErrorContains(t, err, `parameter "token" would put a secret in configuration`)
	assert.NotContains(t, err.Error(), "hunter2")

	_, err = parse(t, "env:?S3cr3t-Value=x")
	require.ErrorContains(t, err, "an unknown parameter (not shown)")
	assert.NotContains(t, err.Error(), "S3cr3t")

	_, err = parse(t, "env:?%zz")
	require.ErrorContains(t, err, "percent-encoding")
}
