package gcpiam

import (
	"context"
	"net/url"
	"os"

	"github.com/pgsecure/pgsecure/internal/uriparam"
	"github.com/pgsecure/pgsecure/secrets"
)

func init() { secrets.Register("gcpiam", open) }

func open(ctx context.Context, u *url.URL) (secrets.Source, error) {
	bad := func(hint string) error {
		return &secrets.Error{Kind: secrets.ErrInvalid, Source: "gcpiam URI", Op: "parse", Hint: hint}
	}
	if u.Opaque != "" || u.Host != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("want gcpiam://?scope=cloudsql|alloydb[&user=NAME][&credentials_file=FILE]")
	}
	q, err := uriparam.Parse(u, []string{"scope", "user", "credentials_file"}, []string{"token", "access_token", "password", "private_key"})
	if err != nil {
		return nil, bad(err.Error())
	}
	service := Service(q["scope"])
	if service.Scope() == "" {
		return nil, bad("scope must be cloudsql or alloydb")
	}
	if f := q["credentials_file"]; f != "" {
		key, err := os.ReadFile(f)
		if err != nil {
			return nil, &secrets.Error{Kind: secrets.ErrNotFound, Source: name(service, q["user"]), Op: "open",
				Hint: "cannot read credentials_file", Err: err}
		}
		return FromServiceAccountKey(ctx, key, service, q["user"])
	}
	return FromADC(ctx, service, q["user"])
}
