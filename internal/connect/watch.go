package connect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgsecure/pgsecure/verify"
)

// frontendStage is installed as pgconn.Config.BuildFrontend: it puts the
// authentication watch between pgx's protocol reader/writer and the
// connection (so pgx still holds the *tls.Conn it needs for channel
// binding).
type frontendStage struct {
	policy *Policy
	next   pgconn.BuildFrontendFunc
}

func (s *frontendStage) buildFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	next := s.next
	if next == nil {
		next = func(r io.Reader, w io.Writer) *pgproto3.Frontend { return pgproto3.NewFrontend(r, w) }
	}
	a := attemptOf(w)
	if a == nil || a.watchFor() == nil {
		// Only the local stage, after verifying the handshake, creates the
		// watch: without it the startup message must not be sent.
		return next(r, refusingWriter{s.policy.refuseNotInstalled(context.Background(), "", &NotInstalledError{Hook: "AfterNetConnect", Replaced: true})})
	}
	aw := a.watchFor()
	aw.r, aw.w = r, w
	a.mu.Lock()
	a.watched = true
	a.mu.Unlock()
	return next(aw, aw)
}

// authWatch reads the server's authentication requests as they arrive and
// refuses a method the policy does not allow before pgx can answer it;
// records the method, the SASL mechanism and whether a SCRAM-SHA-256-PLUS
// exchange completed (the channel-binding proof); and turns a credential
// rejection into one retry with fresh credentials. After AuthenticationOk it
// is a plain pass-through.
type authWatch struct {
	r       io.Reader
	w       io.Writer
	policy  *Policy
	cfg     *pgconn.Config // the config of this connect (nil when unknown)
	attempt *attempt
	ctx     context.Context

	finished atomic.Bool // fast path once AuthenticationOk was seen
	mu       sync.Mutex
	buf      []byte
	done     bool
	asked    bool
	method   verify.AuthMethod
	mech     string // SASL mechanism the client chose
	steps    int    // SASL continue (1) and final (2) seen, in order
	bound    bool   // SCRAM-SHA-256-PLUS completed
	preAuth  preAuthCount
	authOK   bool // AuthenticationOk seen: only an ErrorResponse is looked for until ReadyForQuery
	skip     int  // bytes of a message after AuthenticationOk still to pass unread
}

func newAuthWatch(p *Policy, cfg *pgconn.Config, a *attempt) *authWatch {
	return &authWatch{policy: p, cfg: cfg, attempt: a, ctx: context.Background()}
}

// observation returns the method, the SASL mechanism and whether the
// exchange was bound to the TLS channel.
func (w *authWatch) observation() (method verify.AuthMethod, mechanism string, channelBound bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.method, w.mech, w.bound
}

func (w *authWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if w.finished.Load() || n == 0 {
		return n, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p[:n]...)
	rerr := w.scanServer()
	if w.done {
		w.finished.Store(true)
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}

func (w *authWatch) Write(p []byte) (int, error) {
	if w.finished.Load() {
		return w.w.Write(p)
	}
	w.mu.Lock()
	if !w.done && w.mech == "" && len(p) > 5 && p[0] == 'p' && w.method == verify.AuthSCRAM {
		if i := slices.Index(p[5:], 0); i > 0 {
			w.mech = string(p[5 : 5+i]) // SASLInitialResponse: the chosen mechanism
			if err := w.checkChosenMechanism(); err != nil {
				w.done = true
				w.mu.Unlock()
				return 0, err // nothing of it is sent
			}
		}
	}
	w.mu.Unlock()
	return w.w.Write(p)
}

// scanServer consumes complete server messages from buf. After
// AuthenticationOk it only looks for an ErrorResponse until ReadyForQuery
// (a role that may not log in is refused there), skipping other messages
// without keeping them.
func (w *authWatch) scanServer() error {
	for len(w.buf) > 0 && !w.done {
		if w.skip > 0 {
			n := min(w.skip, len(w.buf))
			w.buf, w.skip = w.buf[n:], w.skip-n
			continue
		}
		if len(w.buf) < 5 {
			break
		}
		typ := w.buf[0]
		size := int(binary.BigEndian.Uint32(w.buf[1:5]))
		if w.authOK {
			switch {
			case typ == 'Z', typ == 'E' && size > maxPreAuthErrorLen:
				w.done = true
			case typ != 'E':
				w.skip = 1 + size
			case len(w.buf) < 1+size:
				return nil // the rest of the error is still to come
			default:
				code, msg := errorFields(w.buf[5 : 1+size])
				w.loginFailed(code, msg, nil)
				w.done = true
			}
			continue
		}
		if err := w.checkPreAuth(typ, size); err != nil {
			w.done = true // refused on the header: the body is never read
			w.buf = nil
			return err
		}
		if len(w.buf) < 1+size {
			break
		}
		body := w.buf[5 : 1+size]
		w.buf = w.buf[1+size:]
		if err := w.countPreAuth(size); err != nil {
			w.done, w.buf = true, nil
			return err
		}
		switch typ {
		case 'R':
			if err := w.authRequest(body); err != nil {
				return err
			}
		case 'E':
			code, msg := errorFields(body)
			err := w.rejected(code, msg)
			w.loginFailed(code, msg, err)
			if err != nil {
				w.done = true
				return err
			}
		}
	}
	if w.done {
		w.buf = nil
	}
	return nil
}

func (w *authWatch) authRequest(body []byte) error {
	if len(body) < 4 {
		return nil
	}
	var method verify.AuthMethod
	switch code := binary.BigEndian.Uint32(body); code {
	case 0: // AuthenticationOk
		if !w.asked {
			w.method = verify.AuthNone
			if !w.policy.Auth.Allows(verify.AuthNone) {
				return w.refuse(verify.AuthNone, "the server let the client in without any authentication (pg_hba trust)")
			}
		}
		w.bound = w.method == verify.AuthSCRAM && w.mech == "SCRAM-SHA-256-PLUS" && w.steps == 2
		if err := w.checkBound(); err != nil {
			return err
		}
		w.authOK = true
		if w.attempt != nil {
			w.attempt.setStage(verify.StageServerCheck)
		}
		return nil
	case 3:
		method = verify.AuthPassword
	case 5:
		method = verify.AuthMD5
	case 7, 8:
		method = verify.AuthGSS
	case 9:
		method = verify.AuthSSPI
	case 10:
		method = verify.AuthSCRAM
		if slices.Contains(strings.Split(string(body[4:]), "\x00"), "OAUTHBEARER") {
			method = verify.AuthOAuth
		}
	case 11, 12: // SASL continue, SASL final: count them in order
		if w.steps == int(code)-11 {
			w.steps++
		}
		return nil
	default:
		return nil
	}
	w.asked = true
	w.method = method
	if !w.policy.Auth.Allows(method) && !w.loginToken(method) {
		return w.refuse(method, "")
	}
	return w.checkBindingOffered(method, body[4:])
}

// loginToken reports whether a cleartext-password request may be answered
// although the policy does not allow it: the password about to be sent is a
// login token of the credential source (short-lived, bound to this user and
// endpoint; see secrets.Credentials.LoginToken) and this connection's TLS
// handshake was verified by pgsecure.
func (w *authWatch) loginToken(method verify.AuthMethod) bool {
	if method != verify.AuthPassword || w.attempt == nil || !w.attempt.isVerified() || w.cfg == nil || w.policy.Credentials == nil {
		return false
	}
	_, ok := w.policy.Credentials.LoginToken(w.cfg.User, w.cfg.Password)
	return ok
}

func (w *authWatch) refuse(method verify.AuthMethod, what string) error {
	if what == "" {
		what = fmt.Sprintf("the server asked for %s authentication", method)
	}
	fix := "configure the server for scram-sha-256 (password_encryption = 'scram-sha-256', reset the role's password, and use scram-sha-256 in pg_hba.conf)"
	switch method {
	case verify.AuthNone:
		fix = "replace trust with scram-sha-256 in pg_hba.conf"
	case verify.AuthPassword:
		fix += "; if this role logs in with a cloud IAM token (RDS IAM, Cloud SQL or AlloyDB IAM, Microsoft Entra ID), " +
			"take its credentials from a login-token source (rdsiam://, gcpiam://, azureiam://) instead of a password"
	}
	return w.refused(&verify.AuthMethodError{Method: method,
		Problem: fmt.Sprintf("%s, which the policy (require_auth=%s) does not allow; nothing was sent", what, w.policy.Auth),
		Fix:     fix + "; or, knowingly, widen require_auth"})
}

// refused reports err, a refusal during authentication, to the observer
// and returns it.
func (w *authWatch) refused(err error) error {
	r := Refusal{Kind: RefusedAuthMethod, Stage: verify.StageAuth, Err: err}
	if w.attempt != nil {
		r.Host, r.Addr = w.attempt.host, w.attempt.addr
	}
	w.policy.Observer.Refused(w.ctx, r)
	return err
}

// rejected handles an ErrorResponse (its SQLSTATE and message) during
// authentication: when it rejects the credentials and the credential
// source has fresh ones, they replace the rejected ones on this connect's
// config and the returned error makes pgx try this host once more (see
// retryError). Otherwise the server's error passes through unchanged.
func (w *authWatch) rejected(code, msg string) error {
	if code == "28000" && !w.asked && w.attempt != nil && w.attempt.certificateRequested() && w.policy.TLS.ClientLeaf() == nil {
		// Refused before any authentication request, by a server that
		// asked for a client certificate and got none: pg_hba.conf
		// requires one (cert, clientcert=verify-ca/verify-full) or has no
		// line for this connection. Told from what happened, not from the
		// server's message, which may be translated.
		return &ClientCertificateRequiredError{Server: &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg}}
	}
	if (code != "28P01" && code != "28000") || w.cfg == nil || w.policy.Credentials == nil || w.attempt == nil || w.attempt.probe {
		return nil
	}
	fresh, verdict := w.policy.Credentials.Rejected(w.attempt.ctx, code, w.cfg.User, w.cfg.Password)
	switch verdict {
	case RetryNone:
		if source, token := w.policy.Credentials.LoginToken(w.cfg.User, w.cfg.Password); token {
			return &TokenRejectedError{Source: source, User: w.cfg.User, Server: &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg}}
		}
		return nil
	case RetryLater: // nothing newer yet: log in again until the database and the source agree
		var err error
		var ok bool
		if fresh, ok, err = w.relogin(code, msg); !ok {
			return err
		}
	}
	w.cfg.User, w.cfg.Password = fresh.User, fresh.Password
	w.keepForRetry()
	return &retryError{code: code, message: msg}
}

// loginFailed reports a rejected login that ends this attempt: err is what
// rejected made of the server's error (nil: the error itself stands).
func (w *authWatch) loginFailed(code, msg string, err error) {
	var retry *retryError
	if w.attempt == nil || w.attempt.probe || errors.As(err, &retry) {
		return // unknown attempt, relogin's probe, or retried with fresh credentials
	}
	if code != "28P01" && code != "28000" {
		return
	}
	f := LoginFailure{Host: w.attempt.host, Addr: w.attempt.addr, Server: &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg}, Err: err}
	if w.cfg != nil {
		f.User = w.cfg.User
	}
	if f.Err == nil {
		f.Err = f.Server
	}
	w.policy.Observer.LoginFailed(w.ctx, f)
}

// keepForRetry makes sure that pgx's second pass retries this host with the
// fresh credentials. pgconn keeps one host for that pass: the last one whose
// error wraps a *pgconn.NotPreferredError. A later host of this connect that
// authenticates but is not preferred (a primary, under
// target_session_attrs=prefer-standby) would take this host's place, and
// the connection would land on the primary although this host (a standby)
// is only waiting for the fresh credentials. So for the rest of this
// connect a not-preferred answer from any other address becomes a plain
// error. If this host then fails again, the connect fails; the next one
// starts with the fresh credentials and needs no retry.
func (w *authWatch) keepForRetry() {
	if w.attempt == nil || w.cfg.ValidateConnect == nil {
		return // nothing can answer "not preferred" after this host
	}
	retry, next := w.attempt.addr, w.cfg.ValidateConnect
	w.cfg.ValidateConnect = func(ctx context.Context, pgConn *pgconn.PgConn) error {
		err := next(ctx, pgConn)
		var np *pgconn.NotPreferredError
		if err == nil || !errors.As(err, &np) {
			return err
		}
		if a := attemptOf(pgConn.Conn()); a == nil || a.addr == retry {
			return err // the retry itself (pgx's second pass ignores not-preferred there)
		}
		return &deferredError{retry: retry, reason: err.Error()}
	}
}

// deferredError replaces a not-preferred answer while another host waits
// for its retry with fresh credentials (see keepForRetry). It deliberately
// does not wrap the *pgconn.NotPreferredError.
type deferredError struct {
	retry  string // the address retried instead
	reason string
}

func (e *deferredError) Error() string {
	return fmt.Sprintf("pgsecure: not used (%s): %s, whose credentials were rejected, is tried again with fresh ones first", e.reason, e.retry)
}

// retryError replaces a credential rejection that will be retried with
// fresh credentials. It wraps a *pgconn.NotPreferredError: pgx then moves on
// to the remaining hosts and finally tries this one once more
// (connectPreferred's fallback pass, which target_session_attrs=
// prefer-standby uses; pinned by TestPgconnRetriesNotPreferredHost). It
// must not expose the server's *pgconn.PgError: pgx stops at a 28P01.
type retryError struct {
	code, message string
}

func (e *retryError) Error() string {
	return fmt.Sprintf("pgsecure: the server rejected the credentials (SQLSTATE %s: %s); retrying once with fresh ones from the credential source", e.code, e.message)
}

// As makes errors.As find a *pgconn.NotPreferredError (pgx's own check).
func (e *retryError) As(target any) bool {
	if p, ok := target.(**pgconn.NotPreferredError); ok {
		*p = &pgconn.NotPreferredError{}
		return true
	}
	return false
}

// errorFields extracts the SQLSTATE (C) and message (M) fields of an
// ErrorResponse body.
func errorFields(body []byte) (code, message string) {
	for len(body) > 1 && body[0] != 0 {
		field := body[0]
		end := slices.Index(body[1:], 0)
		if end < 0 {
			return code, message
		}
		switch field {
		case 'C':
			code = string(body[1 : 1+end])
		case 'M':
			message = string(body[1 : 1+end])
		}
		body = body[2+end:]
	}
	return code, message
}

// TokenRejectedError is verify.TokenRejectedError.
type TokenRejectedError = verify.TokenRejectedError
