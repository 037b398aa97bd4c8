package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out)
	testutil.RequirePG(t, err)
	require.NoError(t, err)
	s := out.String()
	assert.Contains(t, s, "server says: ssl=true")
	assert.Contains(t, s, "sslmode=require refused (ErrInsecureConfig=true)")
	assert.Contains(t, s, "unpinned CA refused (ErrUntrustedServer=true)")
	assert.NotContains(t, s, "quickstart-password")
}
