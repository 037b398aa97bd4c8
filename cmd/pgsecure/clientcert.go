package main

import (
	"strings"

	"github.com/pgsecure/pgsecure"
)

// clientCertificate applies --cert/--key and --pin to the builder.
func clientCertificate(b *pgsecure.Builder, cert, key string, pins []string) {
	if cert != "" {
		b.ClientCertFiles(cert, key)
	}
	if len(pins) > 0 {
		b.SPKIPins(pins...)
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
