package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/pgsecure/pgsecure/internal/files"
	"github.com/pgsecure/pgsecure/secrets"
)

// DefaultKubernetesJWTPath is where Kubernetes mounts a pod's service
// account token.
const DefaultKubernetesJWTPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Auth says how a Client obtains its Vault token. Files named by an Auth are
// read at every login, so rotated tokens and secret IDs are picked up. The
// zero Auth is invalid. An Auth prints without its secrets.
type Auth struct {
	method string // "token", "approle", "kubernetes"
	mount  string // login mount, e.g. "approle"

	token     secrets.Secret
	tokenFile string
	tokenEnv  bool

	roleID       string
	roleIDFile   string
	secretID     secrets.Secret
	secretIDFile string

	role    string
	jwtPath string
}

// TokenAuth uses a fixed Vault token. A rejected token is not retried.
func TokenAuth(token string) Auth { return Auth{method: "token", token: secrets.NewSecret(token)} }

// TokenFileAuth reads the Vault token from a file (as written by Vault
// Agent) at every login; when Vault rejects the token the file is read again.
func TokenFileAuth(path string) Auth { return Auth{method: "token", tokenFile: path} }

// EnvTokenAuth reads the Vault token from the VAULT_TOKEN environment
// variable at every login.
func EnvTokenAuth() Auth { return Auth{method: "token", tokenEnv: true} }

// AppRoleAuth logs in with the AppRole method mounted at auth/approle.
func AppRoleAuth(roleID, secretID string) Auth {
	return Auth{method: "approle", mount: "approle", roleID: roleID, secretID: secrets.NewSecret(secretID)}
}

// AppRoleFileAuth logs in with AppRole, reading the role ID and the secret
// ID from files at every login.
func AppRoleFileAuth(roleIDFile, secretIDFile string) Auth {
	return Auth{method: "approle", mount: "approle", roleIDFile: roleIDFile, secretIDFile: secretIDFile}
}

// KubernetesAuth logs in with the Kubernetes method mounted at
// auth/kubernetes, as role, with the service account token read from
// jwtPath (DefaultKubernetesJWTPath when empty) at every login.
func KubernetesAuth(role, jwtPath string) Auth {
	if jwtPath == "" {
		jwtPath = DefaultKubernetesJWTPath
	}
	return Auth{method: "kubernetes", mount: "kubernetes", role: role, jwtPath: jwtPath}
}

// AtMount returns a copy of a that logs in at auth/<mount> instead of the
// method's default mount. It has no effect on token auth.
func (a Auth) AtMount(mount string) Auth {
	if a.method != "token" {
		a.mount = strings.Trim(mount, "/")
	}
	return a
}

// String describes the method without any secret.
func (a Auth) String() string {
	switch a.method {
	case "token":
		switch {
		case a.tokenFile != "":
			return "token(file " + a.tokenFile + ")"
		case a.tokenEnv:
			return "token(VAULT_TOKEN)"
		}
		return "token(" + secrets.Redacted + ")"
	case "approle", "kubernetes":
		return a.method + "(auth/" + a.mount + ")"
	}
	return "invalid auth"
}

// GoString keeps secrets out of %#v.
func (a Auth) GoString() string { return "vault.Auth{" + a.String() + "}" }

// canRefresh reports whether logging in again may yield a different token.
func (a Auth) canRefresh() bool { return a.method != "token" || a.tokenFile != "" || a.tokenEnv }

// validate reports a configuration that can never log in.
func (a Auth) validate() error {
	var missing string
	switch a.method {
	case "token":
		if a.token.IsZero() && a.tokenFile == "" && !a.tokenEnv {
			missing = "a token"
		}
	case "approle":
		switch {
		case a.roleID == "" && a.roleIDFile == "":
			missing = "a role ID"
		case a.secretID.IsZero() && a.secretIDFile == "":
			missing = "a secret ID"
		}
	case "kubernetes":
		if a.role == "" {
			missing = "a role"
		}
	default:
		return configError("no auth method configured; use TokenAuth, AppRoleAuth or KubernetesAuth", nil)
	}
	if a.mount == "" && a.method != "token" {
		missing = "a login mount"
	}
	if missing != "" {
		return configError(fmt.Sprintf("%s auth needs %s", a.method, missing), nil)
	}
	return nil
}

// login is the outcome of a successful login.
type login struct {
	token     string
	ttl       time.Duration // 0: unknown or never expires
	renewable bool
}

// login obtains a token. c is a client without a token, used only for the
// login request.
func (a Auth) login(ctx context.Context, c *api.Client) (login, error) {
	if a.method == "token" {
		tok, err := a.readToken()
		return login{token: tok}, err
	}
	path := "auth/" + a.mount + "/login"
	m, err := a.loginMethod()
	if err != nil {
		return login{}, err
	}
	s, err := m.Login(ctx, c)
	if err != nil {
		return login{}, classify("login", path, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return login{}, vaultError(secrets.ErrAccessDenied, "login "+path, "Vault answered the login without a token", nil)
	}
	return login{
		token:     s.Auth.ClientToken,
		ttl:       time.Duration(s.Auth.LeaseDuration) * time.Second,
		renewable: s.Auth.Renewable,
	}, nil
}

// loginMethod reads the files the method needs (role ID, secret ID,
// service account token); a missing or unreadable file is a configuration
// error (secrets.ErrInvalid) naming the file, not a Vault outage.
func (a Auth) loginMethod() (api.AuthMethod, error) {
	switch a.method {
	case "approle":
		roleID, err := a.fromFile(a.roleID, a.roleIDFile, "role ID", "role_id_file")
		if err != nil {
			return nil, err
		}
		secretID, err := a.fromFile(a.secretID.Reveal(), a.secretIDFile, "secret ID", "secret_id_file")
		if err != nil {
			return nil, err
		}
		return approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath(a.mount))
	case "kubernetes":
		jwt, err := a.fromFile("", a.jwtPath, "service account token", "jwt_path")
		if err != nil {
			return nil, err
		}
		return kubernetes.NewKubernetesAuth(a.role,
			kubernetes.WithServiceAccountToken(jwt), kubernetes.WithMountPath(a.mount))
	}
	return nil, errors.New("unknown auth method")
}

// fromFile returns value, or the content of path when path is set.
func (a Auth) fromFile(value, path, what, param string) (string, error) {
	if path == "" {
		return value, nil
	}
	v, err := files.ReadTrimmed(path, what)
	if err != nil {
		return "", vaultError(secrets.ErrInvalid, "login", fmt.Sprintf("cannot read the %s file %s: check %s and the file's permissions",
			what, path, param), err)
	}
	return v, nil
}

func (a Auth) readToken() (string, error) {
	switch {
	case a.tokenFile != "":
		return a.fromFile("", a.tokenFile, "Vault token", "token_file")
	case a.tokenEnv:
		tok := strings.TrimSpace(os.Getenv(api.EnvVaultToken))
		if tok == "" {
			return "", vaultError(secrets.ErrInvalid, "login", "VAULT_TOKEN is not set (or empty): set it, "+
				"or name a token file (token_file=) or another auth method (auth=approle, auth=kubernetes)", nil)
		}
		return tok, nil
	}
	return a.token.Reveal(), nil
}
