package vault

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pgsecure/pgsecure/internal/uriparam"
	"github.com/pgsecure/pgsecure/secrets"
)

func init() {
	secrets.Register("vault", Open)
	secrets.Register("vault+http", Open)
}

// uriParams are the query parameters a vault URI may carry.
var uriParams = []string{
	"ca", "namespace", "auth", "auth_mount", "token_file", "role_id", "role_id_file", "secret_id_file",
	"role", "jwt_path", "user_field", "password_field", "host_field", "port_field", "dbname_field",
	"revoke_on_close",
}

// secretParams are refused so that configuration never holds a secret; the
// error names the parameter only.
var secretParams = []string{"token", "vault_token", "secret_id", "password", "jwt"}

// Open builds a Source from a vault:// or vault+http:// URI; see the
// package documentation for the grammar. It is registered with
// secrets.Register, so secrets.Open accepts these URIs once this package is
// imported. It does not contact Vault. Errors wrap secrets.ErrInvalid and
// never echo a secret.
func Open(_ context.Context, u *url.URL) (secrets.Source, error) {
	q, err := uriQuery(u)
	if err != nil {
		return nil, err
	}
	addr, err := uriAddress(u)
	if err != nil {
		return nil, err
	}
	auth, err := uriAuth(q)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(addr, q["ca"], auth)
	if err != nil {
		return nil, err
	}
	if ns := q["namespace"]; ns != "" {
		c.api.SetNamespace(ns)
	}
	return uriSource(c, u.Path, q)
}

func uriError(format string, args ...any) error {
	return &secrets.Error{Kind: secrets.ErrInvalid, Source: "vault URI", Op: "open", Hint: fmt.Sprintf(format, args...)}
}

// uriQuery returns the query parameters, refusing user-info, fragments,
// unknown, repeated and secret-carrying parameters.
func uriQuery(u *url.URL) (map[string]string, error) {
	if u.User != nil {
		return nil, uriError("user-info is not allowed (a token must never be in the URI): " +
			"use VAULT_TOKEN, token_file= or auth=approle")
	}
	if u.Fragment != "" || u.Opaque != "" {
		return nil, uriError("write vault://host:port/<mount>/creds/<role>?... (no fragment)")
	}
	q, err := uriparam.Parse(u, uriParams, secretParams)
	if err != nil {
		return nil, uriError("%s", err.Error())
	}
	return q, nil
}

// uriAddress maps vault:// to https and vault+http:// to http, which only
// loopback hosts may use. The port defaults to Vault's 8200.
func uriAddress(u *url.URL) (string, error) {
	host := u.Hostname()
	if host == "" {
		return "", uriError("no Vault host: write vault://vault.example.com:8200/...")
	}
	port := u.Port()
	if port == "" {
		port = "8200"
	}
	hostport := net.JoinHostPort(host, port)
	switch strings.ToLower(u.Scheme) {
	case "vault":
		return "https://" + hostport, nil
	case "vault+http":
		if !isLoopback(host) {
			return "", uriError("vault+http:// (plain http) is only allowed for a loopback test server, not %q; use vault://", host)
		}
		return "http://" + hostport, nil
	}
	return "", uriError("unsupported scheme %q", u.Scheme)
}

func uriAuth(q map[string]string) (Auth, error) {
	var a Auth
	var allowed []string
	switch method := q["auth"]; method {
	case "", "token":
		a, allowed = EnvTokenAuth(), []string{"token_file"}
		if f := q["token_file"]; f != "" {
			a = TokenFileAuth(f)
		}
	case "approle":
		allowed = []string{"role_id", "role_id_file", "secret_id_file", "auth_mount"}
		if q["secret_id_file"] == "" || (q["role_id"] == "") == (q["role_id_file"] == "") {
			return a, uriError("auth=approle needs secret_id_file= and one of role_id= or role_id_file=")
		}
		a = AppRoleFileAuth(q["role_id_file"], q["secret_id_file"])
		a.roleID = q["role_id"]
	case "kubernetes":
		allowed = []string{"role", "jwt_path", "auth_mount"}
		if q["role"] == "" {
			return a, uriError("auth=kubernetes needs role=")
		}
		a = KubernetesAuth(q["role"], q["jwt_path"])
	default:
		return a, uriError("auth=%q is not one of token, approle, kubernetes", method)
	}
	for _, k := range []string{"token_file", "role_id", "role_id_file", "secret_id_file", "role", "jwt_path", "auth_mount"} {
		if _, ok := q[k]; ok && !slices.Contains(allowed, k) {
			return a, uriError("parameter %q does not apply to auth=%s", k, a.method)
		}
	}
	if m := q["auth_mount"]; m != "" {
		a = a.AtMount(m)
	}
	return a, a.validate()
}

// uriSource picks the source kind from the path: the first "data" segment
// (after the mount) selects KV v2, else a final "creds/<role>" or
// "static-creds/<role>" selects the database engine.
func uriSource(c *Client, path string, q map[string]string) (*Source, error) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	var opts []Option
	if v, ok := q["revoke_on_close"]; ok {
		revoke, err := strconv.ParseBool(v)
		if err != nil {
			return nil, uriError("revoke_on_close=%q is not a boolean", v)
		}
		if revoke {
			opts = append(opts, WithRevokeOnClose())
		}
	}
	for param, opt := range map[string]func(string) Option{
		"user_field": WithUserField, "password_field": WithPasswordField, "host_field": WithHostField,
		"port_field": WithPortField, "dbname_field": WithDatabaseField,
	} {
		if v, ok := q[param]; ok {
			opts = append(opts, opt(v))
		}
	}
	if i := slices.Index(seg, "data"); i >= 1 && i < len(seg)-1 {
		return KV(c, strings.Join(seg[:i], "/"), strings.Join(seg[i+1:], "/"), opts...)
	}
	if n := len(seg); n >= 3 {
		mount, role := strings.Join(seg[:n-2], "/"), seg[n-1]
		switch seg[n-2] {
		case "creds":
			return Database(c, mount, role, opts...)
		case "static-creds":
			return StaticRole(c, mount, role, opts...)
		}
	}
	return nil, uriError("path %q must be <mount>/creds/<role>, <mount>/static-creds/<role> or <mount>/data/<path>", path)
}
