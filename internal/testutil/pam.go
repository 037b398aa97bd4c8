package testutil

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PAMLogin makes a server check the passwords of some roles through PAM, as
// the managed clouds check IAM tokens (RDS's rds_iam, Cloud SQL's and
// Azure's IAM logins): the server asks the client for the password in
// cleartext (AuthenticationCleartextPassword) and hands it to a PAM service.
type PAMLogin struct {
	// Roles log in through PAM; every other role keeps Postgres's default
	// lines (scram-sha-256 over TLS). Required.
	Roles []string
	// Check decides one login: user is the PostgreSQL role, password what
	// the client sent. A nil error accepts; the error is recorded (never the
	// password) and the login is refused. Nil accepts every login.
	Check func(user, password string) error
}

// PAMAttempt is one login the PAM service saw.
type PAMAttempt struct {
	User     string
	Password string // what the client sent (test-only: the test checks it arrived, and where)
	Err      error  // Check's verdict; nil when accepted
}

// PAM is the PAM service of one server.
type PAM struct {
	// Service is the PAM service name (unique per server).
	Service string

	mu       sync.Mutex
	attempts []PAMAttempt
}

// Attempts returns every login the service was asked to decide, oldest first.
func (p *PAM) Attempts() []PAMAttempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PAMAttempt(nil), p.attempts...)
}

// pamScript runs as the server OS user for each PAM login: pam_exec writes
// the password, NUL-terminated, on its stdin; the script passes the user
// and password to the test process over loopback TCP and exits 0 only when
// the test answers "ok".
const pamScript = `#!/bin/bash
IFS= read -r -d '' password || true
exec 3<>/dev/tcp/127.0.0.1/%d || exit 1
printf '%%s\n%%s\n' "$PAM_USER" "$password" >&3
IFS= read -r -t 20 verdict <&3 || exit 1
[ "$verdict" = ok ]
`

// UsePAM routes the logins of o.Roles through a PAM service of their own:
// it writes /etc/pam.d/<service> (pam_exec with expose_authtok running a
// script in the server's directory), puts "hostssl all ROLE 127.0.0.1/32 pam"
// lines before DefaultHBA and reloads. The PAM file is removed when t ends.
// Writing /etc/pam.d needs root: without it t fails under CI=true and is
// skipped otherwise.
func (p *Postgres) UsePAM(t testing.TB, o PAMLogin) *PAM {
	t.Helper()
	if len(o.Roles) == 0 {
		t.Fatalf("pgsecure/testutil: UsePAM: no roles")
	}
	if os.Geteuid() != 0 {
		RequirePG(t, fmt.Errorf("%w: PAM logins need root to write /etc/pam.d", ErrPGUnavailable))
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	pam := &PAM{Service: "pgsecure-test-" + hex.EncodeToString(id[:])}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgsecure/testutil: UsePAM: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go pam.decide(c, o.Check)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })

	script := filepath.Join(p.base, "pam-"+pam.Service+".sh")
	body := fmt.Sprintf(pamScript, ln.Addr().(*net.TCPAddr).Port)
	if err := p.user.writeOwned(script, []byte(body), 0o755); err != nil {
		t.Fatalf("pgsecure/testutil: UsePAM: %v", err)
	}
	conf := filepath.Join("/etc/pam.d", pam.Service)
	rules := "auth required pam_exec.so expose_authtok quiet " + script + "\naccount required pam_permit.so\n"
	if err := os.WriteFile(conf, []byte(rules), 0o644); err != nil {
		RequirePG(t, fmt.Errorf("%w: cannot write %s: %v", ErrPGUnavailable, conf, err))
	}
	t.Cleanup(func() { _ = os.Remove(conf) })

	var hba []string
	for _, r := range o.Roles {
		hba = append(hba, fmt.Sprintf(`hostssl all "%s" 127.0.0.1/32 pam pamservice=%s`, r, pam.Service))
	}
	hba = append(hba, p.opts.HBA...)
	if len(p.opts.HBA) == 0 {
		hba = append(hba, DefaultHBA...)
	}
	p.SetHBA(t, hba...)
	return pam
}

// decide answers one PAM script's question.
func (p *PAM) decide(c net.Conn, check func(user, password string) error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	user, err1 := r.ReadString('\n')
	password, err2 := r.ReadString('\n')
	if err1 != nil || err2 != nil {
		return
	}
	a := PAMAttempt{User: strings.TrimSuffix(user, "\n"), Password: strings.TrimSuffix(password, "\n")}
	if check != nil {
		a.Err = check(a.User, a.Password)
	}
	p.mu.Lock()
	p.attempts = append(p.attempts, a)
	p.mu.Unlock()
	verdict := "ok\n"
	if a.Err != nil {
		verdict = "no\n"
	}
	_, _ = c.Write([]byte(verdict))
}
