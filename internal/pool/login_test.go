package pool

import (
	"testing"
	"time"
)

// TestLoginLogOneLinePerCausePerInterval: repeated failed logins of one
// cause are logged once per LoginLogInterval, the next line counting the
// failures it stands for; another cause has its own line. The times are
// given, not read from the clock.
func TestLoginLogOneLinePerCausePerInterval(t *testing.T) {
	var l loginLog
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	pw := LoginFailure{Host: "db", User: "app", SQLState: "28P01", Source: "env"}
	hba := LoginFailure{Host: "db", User: "app", SQLState: "28000", Source: "env"}
	steps := []struct {
		ev    LoginFailure
		at    time.Duration
		count int
		log   bool
	}{
		{pw, 0, 1, true},
		{pw, time.Second, 0, false},
		{hba, 2 * time.Second, 1, true}, // another cause
		{pw, 30 * time.Second, 0, false},
		{pw, LoginLogInterval, 3, true}, // this one and the two counted since
		{pw, LoginLogInterval + time.Second, 0, false},
		{hba, 3 * LoginLogInterval, 1, true},
	}
	for i, s := range steps {
		n, log := l.due(s.ev, t0.Add(s.at))
		if n != s.count || log != s.log {
			t.Errorf("step %d (%s at %v): got (%d, %v), want (%d, %v)", i, s.ev.SQLState, s.at, n, log, s.count, s.log)
		}
	}
}
