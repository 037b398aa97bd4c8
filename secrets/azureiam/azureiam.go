// Package azureiam is a pgsecure secret source for Azure Database for
// PostgreSQL flexible server with Microsoft Entra ID authentication: the
// password is an Entra ID access token for the Azure OSS RDBMS resource
// (scope https://ossrdbms-aad.database.windows.net/.default).
//
// Importing it registers the "azureiam" scheme with secrets.Open:
//
//	azureiam://?user=NAME
//
// which uses azidentity's DefaultAzureCredential (environment variables,
// workload identity, managed identity, Azure CLI, ...). NAME is the database
// user: the Entra principal's name as created on the server (a user's
// principal name such as alice@contoso.com, a group's display name, or a
// managed identity's or service principal's name). It cannot be derived from
// the credential and must be given.
//
// # Login tokens
//
// The credentials are login tokens (secrets.Credentials.LoginToken): the
// server checks the token outside PostgreSQL's password store and asks for it
// as a cleartext password, which pgsecure answers with a login token only,
// over a TLS connection whose handshake it verified. The token matters only
// at login, so sessions opened with it outlive its Expires: the pool does not
// retire them.
//
// azidentity caches tokens and fetches a new one when the cached one is close
// to expiry (within about five minutes); put the source behind a
// secrets.Cache (pgsecure's Builder.Credentials does) so that connections
// share a token.
//
// This package lives in its own module so that programs that do not import
// it do not link the Azure SDK.
package azureiam

import (
	"context"
	"errors"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pgsecure/pgsecure/secrets"
)

// Scope is the OAuth 2.0 scope of tokens for Azure Database for PostgreSQL.
const Scope = "https://ossrdbms-aad.database.windows.net/.default"

// Source is a secrets.Source of Entra ID login tokens. It is safe for
// concurrent use. A Source built with an invalid configuration reports that
// (wrapping secrets.ErrInvalid) from every call.
type Source struct {
	name string
	user string
	cred azcore.TokenCredential
	err  error
}

var (
	_ secrets.Source = (*Source)(nil)
	_ secrets.Namer  = (*Source)(nil)
)

// New returns a source whose password is a token from cred for the database
// user user (the Entra principal's name on the server).
func New(cred azcore.TokenCredential, user string) *Source {
	s := &Source{name: name(user), user: user, cred: cred}
	switch {
	case user == "":
		s.err = invalid(s.name, "no database user: give the Entra principal's name as created on the server, e.g. azureiam://?user=alice@contoso.com")
	case cred == nil:
		s.err = invalid(s.name, "no token credential")
	}
	return s
}

// FromDefault returns a source using azidentity's DefaultAzureCredential
// with opts (nil for the defaults).
func FromDefault(user string, opts *azidentity.DefaultAzureCredentialOptions) (*Source, error) {
	cred, err := azidentity.NewDefaultAzureCredential(opts)
	if err != nil {
		return nil, &secrets.Error{Kind: secrets.ErrInvalid, Source: name(user), Op: "open",
			Hint: "no Azure credential could be configured: set AZURE_* variables, use workload or managed identity, or log in with az login",
			Err:  secrets.Quiet(err, "DefaultAzureCredential failed")}
	}
	s := New(cred, user)
	if s.err != nil {
		return nil, s.err
	}
	return s, nil
}

func name(user string) string {
	if user == "" {
		return "azureiam://"
	}
	return "azureiam://?user=" + user
}

func invalid(source, hint string) error {
	return &secrets.Error{Kind: secrets.ErrInvalid, Source: source, Op: "open", Hint: hint}
}

// Name names the source by its URI; it holds no secret.
func (s *Source) Name() string { return s.name }

// String returns Name.
func (s *Source) String() string { return s.name }

// Credentials gets a token for Scope. Errors wrap secrets.ErrAccessDenied
// when Entra ID refused the credential (a wrong or expired secret, a disabled
// principal) and secrets.ErrUnavailable otherwise; they never contain a token
// and do not quote Entra ID's response.
func (s *Source) Credentials(ctx context.Context) (secrets.Credentials, error) {
	if s.err != nil {
		return secrets.Credentials{}, s.err
	}
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Scope}})
	if err != nil {
		if ctx.Err() != nil {
			return secrets.Credentials{}, &secrets.Error{Source: s.name, Op: "refresh", Hint: "gave up waiting for a token", Err: context.Cause(ctx)}
		}
		return secrets.Credentials{}, classify(s.name, err)
	}
	if tok.Token == "" {
		return secrets.Credentials{}, &secrets.Error{Kind: secrets.ErrInvalid, Source: s.name, Op: "refresh", Hint: "Entra ID returned an empty token"}
	}
	return secrets.Credentials{User: s.user, Password: secrets.NewSecret(tok.Token), Expires: tok.ExpiresOn,
		Source: s.name, LoginToken: true}, nil
}

// classify turns a credential failure into a secrets.Error.
func classify(source string, err error) error {
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		status := "without a response"
		if af.RawResponse != nil {
			status = af.RawResponse.Status
		}
		text := "Entra ID answered " + status
		if af.RawResponse != nil && af.RawResponse.StatusCode >= 400 && af.RawResponse.StatusCode < 500 &&
			af.RawResponse.StatusCode != http.StatusTooManyRequests {
			return &secrets.Error{Kind: secrets.ErrAccessDenied, Source: source, Op: "refresh",
				Hint: "Entra ID refused the credential: check the client secret or certificate, that it has not expired, and that the principal is enabled",
				Err:  secrets.Quiet(err, text)}
		}
		return &secrets.Error{Kind: secrets.ErrUnavailable, Source: source, Op: "refresh", Hint: "Entra ID's token endpoint failed", Err: secrets.Quiet(err, text)}
	}
	return &secrets.Error{Kind: secrets.ErrUnavailable, Source: source, Op: "refresh",
		Hint: "no token from the Azure credential", Err: secrets.Quiet(err, "token request failed")}
}
