package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExitCodesDocumented keeps `pgsecure help`, docs/cli.md and SCHEMA.md in
// step with the exit codes the command returns.
func TestExitCodesDocumented(t *testing.T) {
	t.Parallel()
	res := runCLI(t, noEnv, "help")
	require.Equal(t, exitOK, res.code)
	readme, err := os.ReadFile("../../docs/cli.md")
	require.NoError(t, err)
	schema, err := os.ReadFile("SCHEMA.md")
	require.NoError(t, err)
	for code, verdict := range verdicts {
		assert.Regexp(t, fmt.Sprintf(`(?m)^  %d  %s:`, code, strings.ReplaceAll(verdict, "-", " ")), res.stdout)
		assert.Contains(t, string(readme), fmt.Sprintf("| %d | `%s` |", code, verdict))
		assert.Contains(t, string(schema), fmt.Sprintf("| %d | `%s` |", code, verdict))
	}
	assert.Contains(t, res.stdout, "pgsecure certs renew")
	assert.Contains(t, res.stdout, "exit codes of certs")
}
