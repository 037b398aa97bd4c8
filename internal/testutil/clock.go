package testutil

import (
	"sync"
	"time"
)

// Clock is a test double for time.Now, for code that takes an injected
// clock (the credential cache's CacheOptions.Now, the TLS policy's now):
// time moves only when the test calls Advance, so no assertion depends on
// the wall clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
