package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/pgsecure/pgsecure/secrets"
)

func (s *Source) readKV(ctx context.Context) (secrets.Credentials, error) {
	var kv *api.KVSecret
	err := s.client.do(ctx, func(c *api.Client) (err error) {
		kv, err = c.KVv2(s.mount).Get(ctx, s.secret)
		return err
	})
	if err != nil {
		return secrets.Credentials{}, classify("read", s.path, err)
	}
	if kv == nil || kv.Data == nil {
		return secrets.Credentials{}, vaultError(secrets.ErrNotFound, "read "+s.path,
			"the latest version of the secret is deleted or empty", nil)
	}
	f := s.cfg.fields
	creds := secrets.Credentials{Source: s.name}
	var pw string
	var err2 error
	for _, p := range []struct {
		dst      *string
		key      string
		required bool
	}{{&creds.User, f.user, true}, {&pw, f.password, true}, {&creds.Host, f.host, false}, {&creds.Database, f.database, false}} {
		if *p.dst, err2 = s.str(kv.Data, p.key, p.required); err2 != nil {
			return secrets.Credentials{}, err2
		}
	}
	creds.Password = secrets.NewSecret(pw)
	if creds.Port, err2 = s.port(kv.Data, f.port); err2 != nil {
		return secrets.Credentials{}, err2
	}
	if kv.VersionMetadata != nil {
		creds.Version = strconv.Itoa(kv.VersionMetadata.Version)
	}
	return creds, nil
}

func (s *Source) readStatic(ctx context.Context) (secrets.Credentials, error) {
	sec, err := s.readLogical(ctx)
	if err != nil {
		return secrets.Credentials{}, err
	}
	creds, err := s.userPassword(sec)
	if err != nil {
		return secrets.Credentials{}, err
	}
	// No Expires: sessions opened with a static role's password outlive its
	// rotation, so the pool need not retire them. A rotation is picked up
	// when the cache refreshes, or at once when the database rejects the old
	// password (see Invalidate).
	if v, ok := sec.Data["last_vault_rotation"].(string); ok {
		creds.Version = v
	}
	return creds, nil
}

// readDynamic reads new credentials from <mount>/creds/<role>.
func (s *Source) readDynamic(ctx context.Context) (secrets.Credentials, *api.Secret, error) {
	sec, err := s.readLogical(ctx)
	if err != nil {
		return secrets.Credentials{}, nil, err
	}
	creds, err := s.userPassword(sec)
	if err != nil {
		return secrets.Credentials{}, nil, err
	}
	creds.Version = sec.LeaseID
	if sec.LeaseDuration > 0 {
		creds.Expires = s.now().Add(time.Duration(sec.LeaseDuration) * time.Second)
	}
	return creds, sec, nil
}

func (s *Source) readLogical(ctx context.Context) (*api.Secret, error) {
	var sec *api.Secret
	err := s.client.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, s.path)
		return err
	})
	if err != nil {
		return nil, classify("read", s.path, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, vaultError(secrets.ErrNotFound, "read "+s.path, "Vault returned no data: check the mount and role", nil)
	}
	return sec, nil
}

func (s *Source) userPassword(sec *api.Secret) (secrets.Credentials, error) {
	user, err := s.str(sec.Data, "username", true)
	if err != nil {
		return secrets.Credentials{}, err
	}
	pw, err := s.str(sec.Data, "password", true)
	if err != nil {
		return secrets.Credentials{}, err
	}
	return secrets.Credentials{User: user, Password: secrets.NewSecret(pw), Source: s.name}, nil
}

// str returns data[key] as a string. The error names the key, never the
// value.
func (s *Source) str(data map[string]any, key string, required bool) (string, error) {
	if key == "" {
		return "", nil
	}
	v, ok := data[key]
	if !ok || v == nil {
		if required {
			return "", invalid(s.path, fmt.Sprintf("field %q is missing; name the right field with the field options", key))
		}
		return "", nil
	}
	str, ok := v.(string)
	if !ok || (required && str == "") {
		return "", invalid(s.path, fmt.Sprintf("field %q must be a non-empty string", key))
	}
	return str, nil
}

func (s *Source) port(data map[string]any, key string) (uint16, error) {
	if key == "" || data[key] == nil {
		return 0, nil
	}
	n, ok := number(data[key])
	if !ok || n < 1 || n > math.MaxUint16 {
		return 0, invalid(s.path, fmt.Sprintf("field %q must be a port number", key))
	}
	return uint16(n), nil
}

// number accepts the forms Vault uses for numbers in secret data.
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	case float64:
		return int64(n), n == math.Trunc(n)
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}
