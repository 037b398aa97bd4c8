package testutil

import "path/filepath"

// GuideConf is the postgresql.conf of a server configured as the guide asks:
// SCRAM password storage, TLS 1.2 or newer, no weak TLS 1.2 cipher suites,
// and every connection attempt logged. Use it as PGOptions.Conf (copy it
// before adding to it).
func GuideConf() map[string]string {
	return map[string]string{
		"password_encryption":      "'scram-sha-256'",
		"ssl_min_protocol_version": "'TLSv1.2'",
		"ssl_ciphers": "'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
			"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'",
		"log_connections": "on",
	}
}

// ServerCertFiles returns the paths of the certificate and key files the
// server's ssl_cert_file and ssl_key_file name. They belong to the server's
// OS user; a test that replaces them must keep that owner and then reload
// (pg_reload_conf) for new connections to see the change.
func (p *Postgres) ServerCertFiles() (certFile, keyFile string) {
	return filepath.Join(p.base, "server.crt"), filepath.Join(p.base, "server.key")
}
