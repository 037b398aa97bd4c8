package vault

import "log/slog"

// Option configures a Source. Options that do not apply to the kind of
// source they are given to make the constructor fail.
type Option func(*config) error

type config struct {
	fields        fields
	fieldsSet     bool
	revokeOnClose bool
	logger        *slog.Logger
}

// fields names the KV v2 keys that hold each credential part. Empty host,
// port and database keys are not read.
type fields struct {
	user, password, host, port, database string
}

func defaultConfig() config {
	return config{
		fields: fields{user: "username", password: "password"},
		logger: slog.New(slog.DiscardHandler),
	}
}

func fieldOption(name, key string, set func(*fields)) Option {
	return func(c *config) error {
		if key == "" {
			return configError(name+" must not be empty", nil)
		}
		set(&c.fields)
		c.fieldsSet = true
		return nil
	}
}

// WithUserField names the KV key holding the user name (default "username").
// Field options apply to KV sources only.
func WithUserField(key string) Option {
	return fieldOption("user field", key, func(f *fields) { f.user = key })
}

// WithPasswordField names the KV key holding the password (default "password").
func WithPasswordField(key string) Option {
	return fieldOption("password field", key, func(f *fields) { f.password = key })
}

// WithHostField names the KV key holding the database host (not read by default).
func WithHostField(key string) Option {
	return fieldOption("host field", key, func(f *fields) { f.host = key })
}

// WithPortField names the KV key holding the database port, a number or a
// decimal string (not read by default).
func WithPortField(key string) Option {
	return fieldOption("port field", key, func(f *fields) { f.port = key })
}

// WithDatabaseField names the KV key holding the database name (not read by default).
func WithDatabaseField(key string) Option {
	return fieldOption("database field", key, func(f *fields) { f.database = key })
}

// WithRevokeOnClose makes Close revoke the current lease of a Database
// source, so its role is dropped at once instead of at the end of the lease.
func WithRevokeOnClose() Option {
	return func(c *config) error {
		c.revokeOnClose = true
		return nil
	}
}

// WithLogger sets where lease renewals and failures are logged. Log records
// carry lease IDs and paths, never tokens or passwords. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return configError("WithLogger needs a non-nil logger", nil)
		}
		c.logger = l
		return nil
	}
}

func buildConfig(k kind, opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	if c.fieldsSet && k != kindKV {
		return c, configError("field options apply only to KV sources", nil)
	}
	if c.revokeOnClose && k != kindDatabase {
		return c, configError("WithRevokeOnClose applies only to Database sources", nil)
	}
	return c, nil
}
