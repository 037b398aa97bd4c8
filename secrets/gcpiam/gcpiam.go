// Package gcpiam is a pgsecure secret source for Google Cloud SQL for
// PostgreSQL and AlloyDB IAM database authentication: the password is an
// OAuth 2.0 access token of the application's Google identity, scoped to
// the service's login scope only.
//
// Importing it registers the "gcpiam" scheme with secrets.Open:
//
//	gcpiam://?scope=cloudsql[&user=NAME][&credentials_file=FILE]
//	gcpiam://?scope=alloydb[&user=NAME][&credentials_file=FILE]
//
// Without credentials_file, Application Default Credentials are used
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, or the
// metadata server on Google Cloud). user is the database user; it may be left
// out for a service-account key, whose database user is derived the way both
// services expect: the service account's email without
// ".gserviceaccount.com" (sa@project.iam). An IAM user's database user is its
// full email address.
//
// # Login tokens
//
// The credentials are login tokens (secrets.Credentials.LoginToken): Cloud
// SQL and AlloyDB check the token outside PostgreSQL's password store and ask
// for it as a cleartext password, which pgsecure answers with a login token
// only, over a TLS connection whose handshake it verified. The token matters
// only at login, so sessions opened with it outlive its Expires (about an
// hour): the pool does not retire them.
//
// Each Credentials call asks Google for a new token; put the source behind
// a secrets.Cache (pgsecure's Builder.Credentials does) so that connections
// share a token and the cache fetches the next one at about two thirds of
// its life, in the background.
//
// This package lives in its own module so that programs that do not import
// it do not link golang.org/x/oauth2.
package gcpiam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/pgsecure/pgsecure/secrets"
)

// Service is the Google database service a token is for.
type Service string

// The services and their login scopes.
const (
	CloudSQL Service = "cloudsql" // scope https://www.googleapis.com/auth/sqlservice.login
	AlloyDB  Service = "alloydb"  // scope https://www.googleapis.com/auth/alloydb.login
)

// Scope returns the OAuth 2.0 scope that limits a token to logging in to s.
func (s Service) Scope() string {
	switch s {
	case CloudSQL:
		return "https://www.googleapis.com/auth/sqlservice.login"
	case AlloyDB:
		return "https://www.googleapis.com/auth/alloydb.login"
	}
	return ""
}

// Source is a secrets.Source of Cloud SQL or AlloyDB login tokens. It is safe
// for concurrent use and does not cache. A Source built with an invalid
// configuration reports that (wrapping secrets.ErrInvalid) from every call.
type Source struct {
	name string
	user string
	ts   oauth2.TokenSource // asks the token endpoint on every call
	err  error
}

var (
	_ secrets.Source = (*Source)(nil)
	_ secrets.Namer  = (*Source)(nil)
)

// New returns a source whose password is a token from ts for the database
// user user. ts must issue tokens with service's scope; each Credentials call
// asks ts's underlying source for a new token (an oauth2.ReuseTokenSource is
// looked through).
func New(ts oauth2.TokenSource, service Service, user string) *Source {
	s := &Source{name: name(service, user), user: user}
	switch {
	case service.Scope() == "":
		s.err = invalid(s.name, fmt.Sprintf("unknown service %q: want %q or %q", service, CloudSQL, AlloyDB))
	case user == "":
		s.err = invalid(s.name, "no database user: give the IAM user's email, or the service account's email without .gserviceaccount.com")
	case ts == nil:
		s.err = invalid(s.name, "no token source")
	default:
		s.ts = fresh(ts)
	}
	return s
}

// FromADC returns a source for service from Application Default Credentials.
// An empty user is derived from a service-account key (see the package
// documentation); other credentials need it given. ctx is used as in
// FromServiceAccountKey.
func FromADC(ctx context.Context, service Service, user string) (*Source, error) {
	if service.Scope() == "" {
		return nil, invalid(name(service, user), fmt.Sprintf("unknown service %q: want %q or %q", service, CloudSQL, AlloyDB))
	}
	creds, err := google.FindDefaultCredentials(context.WithoutCancel(ctx), service.Scope())
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.ErrInvalid, Source: name(service, user), Op: "open",
			Hint: "no Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS, run gcloud auth application-default login, or run on Google Cloud",
			Err:  secrets.Quiet(err, "Application Default Credentials not found")}
	}
	return fromCredentials(creds, service, user)
}

// FromServiceAccountKey returns a source for service from a service account's
// JSON key. An empty user is derived from the key's client_email. The token
// endpoint is the key's token_uri; ctx may carry an *http.Client under
// oauth2.HTTPClient for it. Token requests keep ctx's values but not its
// cancellation (the source outlives a startup timeout); each Credentials
// call is bounded by its own ctx.
func FromServiceAccountKey(ctx context.Context, key []byte, service Service, user string) (*Source, error) {
	if service.Scope() == "" {
		return nil, invalid(name(service, user), fmt.Sprintf("unknown service %q: want %q or %q", service, CloudSQL, AlloyDB))
	}
	creds, err := google.CredentialsFromJSONWithType(context.WithoutCancel(ctx), key, google.ServiceAccount, service.Scope())
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.ErrInvalid, Source: name(service, user), Op: "open",
			Hint: "not a service account JSON key", Err: secrets.Quiet(err, "the key could not be parsed")}
	}
	return fromCredentials(creds, service, user)
}

func fromCredentials(creds *google.Credentials, service Service, user string) (*Source, error) {
	if user == "" {
		user = DatabaseUser(creds.JSON)
	}
	s := New(creds.TokenSource, service, user)
	if s.err != nil {
		return nil, s.err
	}
	return s, nil
}

// DatabaseUser derives the database user from Google credentials JSON: for
// a service account key, its client_email without ".gserviceaccount.com"
// (as Cloud SQL and AlloyDB name service accounts' database users); "" for
// anything else.
func DatabaseUser(credentialsJSON []byte) string {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
	}
	if json.Unmarshal(credentialsJSON, &f) != nil || f.Type != "service_account" {
		return ""
	}
	return strings.TrimSuffix(f.ClientEmail, ".gserviceaccount.com")
}

// forever makes an oauth2 reuse wrapper treat every token as expired, so
// that each call reaches the token endpoint; pgsecure's cache decides when.
const forever = 100 * 365 * 24 * time.Hour

// fresh looks through an oauth2.ReuseTokenSource (without changing it) so
// that every Token call asks for a new token.
func fresh(ts oauth2.TokenSource) oauth2.TokenSource {
	return oauth2.ReuseTokenSourceWithExpiry(&oauth2.Token{}, ts, forever)
}

func name(service Service, user string) string {
	n := "gcpiam://?scope=" + string(service)
	if user != "" {
		n += "&user=" + user
	}
	return n
}

func invalid(source, hint string) error {
	return &secrets.Error{Kind: secrets.ErrInvalid, Source: source, Op: "open", Hint: hint}
}

// Name names the source by its URI; it holds no secret.
func (s *Source) Name() string { return s.name }

// String returns Name.
func (s *Source) String() string { return s.name }

// Credentials asks Google for a new token. Errors wrap secrets.ErrAccessDenied
// when the token endpoint refused the credentials (a revoked key, a missing
// permission) and secrets.ErrUnavailable otherwise; they never contain a
// token.
func (s *Source) Credentials(ctx context.Context) (secrets.Credentials, error) {
	if s.err != nil {
		return secrets.Credentials{}, s.err
	}
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := s.ts.Token()
		done <- result{tok, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return secrets.Credentials{}, &secrets.Error{Source: s.name, Op: "refresh", Hint: "gave up waiting for a token", Err: context.Cause(ctx)}
	}
	if r.err != nil {
		return secrets.Credentials{}, classify(s.name, r.err)
	}
	if r.tok.AccessToken == "" {
		return secrets.Credentials{}, &secrets.Error{Kind: secrets.ErrInvalid, Source: s.name, Op: "refresh", Hint: "the token endpoint returned an empty token"}
	}
	return secrets.Credentials{User: s.user, Password: secrets.NewSecret(r.tok.AccessToken), Expires: r.tok.Expiry,
		Source: s.name, LoginToken: true}, nil
}

// classify turns a token endpoint failure into a secrets.Error. The
// endpoint's response body is not quoted.
func classify(source string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		text := "the token endpoint answered " + statusOf(re)
		if code := errorCode(re); code != "" {
			text += " (" + code + ")"
		}
		if re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 && re.Response.StatusCode != 429 {
			return &secrets.Error{Kind: secrets.ErrAccessDenied, Source: source, Op: "refresh",
				Hint: "Google refused the credentials: check that the service account key is not revoked or disabled, and that it may use the login scope",
				Err:  secrets.Quiet(err, text)}
		}
		return &secrets.Error{Kind: secrets.ErrUnavailable, Source: source, Op: "refresh", Hint: "Google's token endpoint failed", Err: secrets.Quiet(err, text)}
	}
	return &secrets.Error{Kind: secrets.ErrUnavailable, Source: source, Op: "refresh", Hint: "could not reach Google's token endpoint",
		Err: secrets.Quiet(err, "token request failed")}
}

// errorCode is the OAuth 2.0 error code (RFC 6749 section 5.2: a fixed
// vocabulary such as invalid_grant, never a secret), from the parsed error
// or the JSON body.
func errorCode(re *oauth2.RetrieveError) string {
	code := re.ErrorCode
	if code == "" {
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			code = body.Error
		}
	}
	for _, r := range code {
		if (r < 'a' || r > 'z') && r != '_' {
			return ""
		}
	}
	return code
}

func statusOf(re *oauth2.RetrieveError) string {
	if re.Response == nil {
		return "without a response"
	}
	return re.Response.Status
}
