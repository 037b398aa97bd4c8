// Package x509check holds pgsecure's server-certificate checks, written to
// give the verdict libpq 15 gives with sslmode=verify-full (OpenSSL build):
//
//   - NewRoots and VerifyChain: the chain leads to a trusted certificate
//     that is self-signed, as OpenSSL without X509_V_FLAG_PARTIAL_CHAIN
//     requires (an intermediate CA trusted alone is not a trust anchor; the
//     pinned intermediates complete paths), and passes the OpenSSL rules
//     crypto/x509 lacks: StoreContinuity, CheckServerPurpose and
//     CheckCommonNameConstraints;
//   - MatchHostname: libpq's host-name rules (SAN before Common Name, one
//     leading "*." label, ASCII-only case folding, inet_aton IPv4 spellings);
//   - CheckRevocation (crl.go): libpq's CRL check, OpenSSL 3.0's
//     X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL, over a verified
//     chain; NameHash: the issuer-name hash of `openssl rehash` directories;
//   - SPKIPin and CheckPins: public-key pinning over the verified chain;
//   - IsRSAPSS and ProbeCertificate: recognising RSA-PSS server keys, which
//     Go's crypto/tls cannot negotiate.
//
// Failures are *Error values; the root package turns them into its public
// *CertificateError. Nothing here touches the network except
// ProbeCertificate, and nothing reads files.
package x509check
