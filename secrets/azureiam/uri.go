package azureiam

import (
	"context"
	"net/url"

	"github.com/pgsecure/pgsecure/internal/uriparam"
	"github.com/pgsecure/pgsecure/secrets"
)

func init() { secrets.Register("azureiam", open) }

func open(_ context.Context, u *url.URL) (secrets.Source, error) {
	bad := func(hint string) error {
		return &secrets.Error{Kind: secrets.ErrInvalid, Source: "azureiam URI", Op: "parse", Hint: hint}
	}
	if u.Opaque != "" || u.Host != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("want azureiam://?user=NAME")
	}
	q, err := uriparam.Parse(u, []string{"user"}, []string{"token", "access_token", "password", "client_secret"})
	if err != nil {
		return nil, bad(err.Error())
	}
	if q["user"] == "" {
		return nil, bad("no database user: azureiam://?user=NAME (the Entra principal's name on the server)")
	}
	return FromDefault(q["user"], nil)
}
