package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

// TestREADMEShowsThisProgram keeps README.md's complete program and this
// file identical, from the package clause on.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	program := string(src[strings.Index(string(src), "package main"):])
	assert.Contains(t, string(readme), "```go\n"+program+"```", "README.md must show examples/readme/main.go from 'package main' on")
}

func TestREADMEProgram(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", "readme-pw")
	t.Setenv("PGPASSWORD", "readme-pw")
	require.NoError(t, run(context.Background(), pg.URL("app", "", "postgres")+"?sslrootcert="+pki.CAFile))

	other := testutil.NewPKI(t)
	err := run(context.Background(), pg.URL("app", "", "postgres")+"?sslrootcert="+other.CAFile)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "a server the pinned CA did not issue is refused")
	assert.NotContains(t, err.Error(), "readme-pw")
}
