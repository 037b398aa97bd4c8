package shared

// Fix texts name a setting so that both audiences read them correctly: a
// program using the Builder and a user of the pgsecure command. The libpq
// keyword (and its environment variable) comes first, then the Builder
// option, then the command's flag. No text is reworded afterwards: the
// command prints these as they are.

// Settings that both a connection string and the Builder can give, spelled
// for a fix.
const (
	SSLRootCert = "sslrootcert (PGSSLROOTCERT; Builder.RootCAFile; pgsecure check --ca)"
	SystemRoots = "sslrootcert=system (Builder.SystemRoots; pgsecure check --system-roots)"
	SSLCertKey  = "sslcert and sslkey (PGSSLCERT/PGSSLKEY; Builder.ClientCertFiles; pgsecure check --cert/--key)"
	SSLCRL      = "sslcrl (PGSSLCRL; Builder.CRLFiles; pgsecure check --crl)"
	SSLCRLDir   = "sslcrldir (PGSSLCRLDIR; Builder.CRLDir; pgsecure check --crl-dir)"
	SPKIPins    = "Builder.SPKIPins (pgsecure check --pin)"
)

// builderOptions spells each Builder option that has a pgsecure check flag.
var builderOptions = map[string]string{
	"RootCAFile":      "Builder.RootCAFile (pgsecure check --ca)",
	"SystemRoots":     "Builder.SystemRoots (pgsecure check --system-roots)",
	"ClientCertFiles": "Builder.ClientCertFiles (pgsecure check --cert/--key)",
	"SPKIPins":        SPKIPins,
	"CRLFiles":        "Builder.CRLFiles (pgsecure check --crl)",
	"CRLDir":          "Builder.CRLDir (pgsecure check --crl-dir)",
}

// Spell names the setting a value came from (a libpq keyword, an
// environment variable or a Builder option) in a problem or fix text: a
// Builder option with a pgsecure check flag is named with that flag, any
// other name as it is.
func Spell(setting string) string {
	if s, ok := builderOptions[setting]; ok {
		return s
	}
	return setting
}
