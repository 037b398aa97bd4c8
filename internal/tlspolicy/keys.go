package tlspolicy

import (
	"errors"
	"fmt"

	"github.com/pgsecure/pgsecure/verify"

	"github.com/pgsecure/pgsecure/internal/keyfile"
)

// keyProblem turns an error from keyfile.Parse into a ConfigError that
// names the key (origin, e.g. "file /etc/app/client.key") and says what to do.
// setting names the key's setting ("sslkey"), passSetting the passphrase's.
func keyProblem(setting, passSetting, origin string, err error) error {
	var pe *keyfile.PassphraseError
	var se *keyfile.PassphraseSourceError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("pgsecure: %s: cannot get the passphrase for key %s: %w", passSetting, origin, se.Err)
	case errors.As(err, &pe):
		return &verify.ConfigError{Setting: passSetting, Problem: "wrong passphrase for key " + origin, Err: err,
			Fix: "give the passphrase the key was encrypted with (sslpassword or ClientKeyPassphrase); " +
				"if it is right, the key file is damaged: check it with openssl pkey -in KEY -noout"}
	case errors.Is(err, keyfile.ErrNoPassphrase):
		return &verify.ConfigError{Setting: passSetting, Problem: "key " + origin + " is encrypted and no passphrase was given",
			Fix: "set sslpassword in the connection string or use ClientKeyPassphrase"}
	}
	return &verify.ConfigError{Setting: setting, Problem: "cannot use key " + origin, Err: err}
}
