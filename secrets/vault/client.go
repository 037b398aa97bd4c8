package vault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/pgsecure/pgsecure/internal/refresh"
)

// Client is a Vault API client that keeps itself logged in: it logs in
// before its first request, logs in again when its token nears the end of
// its lease, and when Vault answers 403 it logs in once more and retries the
// request once. Logins are shared between concurrent callers; no lock is held
// while talking to Vault. A Client is safe for concurrent use.
type Client struct {
	api  *api.Client
	auth *Auth // nil: the caller manages the token
	now  func() time.Time

	mu      sync.Mutex
	gen     uint64    // successful logins so far
	expires time.Time // end of the token's lease; zero when unknown
	ttl     time.Duration
	logins  refresh.Group[uint64]
}

// requestTimeout bounds one shared login or lease read, which runs detached
// from the caller that started it.
const requestTimeout = 30 * time.Second

// NewClient returns a Client for the Vault server at addr (VAULT_ADDR when
// empty) that verifies the server's TLS certificate against the PEM CA file
// caFile (VAULT_CACERT when empty, else the system roots) and logs in with
// auth. VAULT_SKIP_VERIFY and VAULT_AGENT_ADDR are ignored: verification
// cannot be turned off. addr must be https, except http on a loopback address
// (a local test server or agent). NewClient does not contact Vault; call
// Login to check the configuration early.
func NewClient(addr, caFile string, auth Auth) (*Client, error) {
	if err := auth.validate(); err != nil {
		return nil, err
	}
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, configError("the VAULT_* environment variables are not valid", cfg.Error)
	}
	cfg.AgentAddress = ""
	if addr != "" {
		cfg.Address = addr
	}
	if err := checkAddress(cfg.Address); err != nil {
		return nil, err
	}
	if caFile == "" {
		caFile = os.Getenv(api.EnvVaultCACert)
	}
	if caFile != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: caFile}); err != nil {
			return nil, configError("cannot load the Vault CA file "+caFile+" (ca= or VAULT_CACERT)", err)
		}
	}
	tr, ok := cfg.HttpClient.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil {
		return nil, configError(fmt.Sprintf("unexpected Vault HTTP transport %T", cfg.HttpClient.Transport), nil)
	}
	tr.TLSClientConfig.InsecureSkipVerify = false
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, configError("cannot create the Vault client", err)
	}
	c.ClearToken() // api.NewClient picks up VAULT_TOKEN; auth decides instead
	return newClient(c, &auth), nil
}

// Wrap returns a Client around an api.Client the caller configured. With a
// nil auth the caller manages c's token (for example Vault Agent or
// VAULT_TOKEN) and the Client never logs in. Wrap refuses a client that skips
// TLS verification or talks plain http to a non-loopback address.
func Wrap(c *api.Client, auth *Auth) (*Client, error) {
	if c == nil {
		return nil, configError("Wrap needs a non-nil *api.Client", nil)
	}
	if auth != nil {
		if err := auth.validate(); err != nil {
			return nil, err
		}
		a := *auth
		auth = &a
	}
	if err := checkAddress(c.Address()); err != nil {
		return nil, err
	}
	if tr, ok := c.CloneConfig().HttpClient.Transport.(*http.Transport); ok &&
		tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
		return nil, configError("the Vault client skips TLS verification; "+
			"unset VAULT_SKIP_VERIFY and give it a CA file instead", nil)
	}
	return newClient(c, auth), nil
}

func newClient(c *api.Client, auth *Auth) *Client {
	return &Client{api: c, auth: auth, now: time.Now}
}

// API returns the underlying client, for requests this package does not
// make. Its token may change whenever the Client logs in again.
func (c *Client) API() *api.Client { return c.api }

// Login logs in now (if the Client manages logins and is not logged in
// yet), so a configuration error shows up before the first secret is read.
func (c *Client) Login(ctx context.Context) error {
	_, err := c.ensureLogin(ctx)
	return err
}

// checkAddress allows https anywhere and http only on loopback addresses.
func checkAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return configError(fmt.Sprintf("Vault address %q is not a URL like https://vault:8200", addr), nil)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return configError(fmt.Sprintf("Vault address %s must use https (plain http only on loopback)", u.Redacted()), nil)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// do runs fn with a logged-in client. When Vault answers 403 and the Client
// can obtain a different token, it logs in again and runs fn once more.
func (c *Client) do(ctx context.Context, fn func(*api.Client) error) error {
	gen, err := c.ensureLogin(ctx)
	if err != nil {
		return err
	}
	err = fn(c.api)
	if err == nil || !isDenied(err) || c.auth == nil || !c.auth.canRefresh() {
		return err
	}
	if _, lerr := c.relogin(ctx, gen); lerr != nil {
		return lerr
	}
	return fn(c.api)
}

// ensureLogin logs in unless a token is held that is not near its end.
func (c *Client) ensureLogin(ctx context.Context) (uint64, error) {
	if c.auth == nil {
		return 0, nil
	}
	c.mu.Lock()
	gen, fresh := c.gen, c.gen > 0 && !c.expiringLocked()
	c.mu.Unlock()
	if fresh {
		return gen, nil
	}
	return c.relogin(ctx, gen)
}

// expiringLocked reports whether the token is within its safety margin
// (see refresh.Margin) of expiring.
func (c *Client) expiringLocked() bool {
	return !c.expires.IsZero() && !c.now().Before(c.expires.Add(-refresh.Margin(c.ttl)))
}

// relogin logs in unless another caller already did since generation seen.
func (c *Client) relogin(ctx context.Context, seen uint64) (uint64, error) {
	return c.logins.Do(ctx, func() (uint64, bool, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.gen, c.gen != seen && !c.expiringLocked(), nil
	}, requestTimeout, c.doLogin)
}

// doLogin performs one login on a token-less copy of the client and installs
// the new token.
func (c *Client) doLogin(ctx context.Context) (uint64, error) {
	var l login
	lc, err := c.api.CloneWithHeaders()
	if err == nil {
		lc.ClearToken()
		l, err = c.auth.login(ctx, lc)
	} else {
		err = classify("login", "auth", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return c.gen, err
	}
	c.api.SetToken(l.token)
	c.gen++
	c.ttl = l.ttl
	c.expires = time.Time{}
	if l.ttl > 0 {
		c.expires = c.now().Add(l.ttl)
	}
	return c.gen, nil
}
