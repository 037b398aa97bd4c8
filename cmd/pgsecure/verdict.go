package main

// Exit codes. Every non-zero code names one kind of outcome, and the lower
// the number the worse the outcome: with several findings or targets the
// exit code is the lowest non-zero one (see worse).
const (
	exitOK          = 0 // every check passed
	exitInsecure    = 1 // something is insecure (or a certificate failed verification)
	exitUsage       = 2 // usage or configuration error: the check itself is wrong
	exitNoLogin     = 3 // TLS was verified but the server did not let the client in
	exitUnreachable = 4 // no answer, timeout, or the server is not accepting connections
	exitWarning     = 5 // weaker than the guide asks, or a certificate expires soon
	exitUnchecked   = 6 // all checked findings passed, but something could not be checked
)

// verdicts names each exit code in reports.
var verdicts = map[int]string{
	exitOK:          "secure",
	exitInsecure:    "insecure",
	exitUsage:       "usage-error",
	exitNoLogin:     "cannot-log-in",
	exitUnreachable: "unreachable",
	exitWarning:     "warning",
	exitUnchecked:   "incomplete",
}

// worse returns the worse of two exit codes: the lowest non-zero one.
func worse(a, b int) int {
	switch {
	case a == exitOK:
		return b
	case b == exitOK:
		return a
	}
	return min(a, b)
}

// severityExit is the exit code a finding of severity sev gives.
func severityExit(sev string) int {
	switch sev {
	case sevInsecure:
		return exitInsecure
	case sevWarning:
		return exitWarning
	case sevUnchecked:
		return exitUnchecked
	}
	return exitOK
}

// finish sets the target's exit code (worst of its error and findings) and
// verdict.
func (r *checkReport) finish() {
	code := r.exitFromError
	for _, f := range r.Findings {
		code = worse(code, severityExit(f.Severity))
	}
	r.ExitCode, r.Verdict = code, verdicts[code]
}

// summarize sets the overall exit code and verdict from the targets'.
func (o *checkOutput) summarize() {
	o.SchemaVersion = schemaVersion
	o.ExitCode = exitOK
	for _, t := range o.Targets {
		o.ExitCode = worse(o.ExitCode, t.ExitCode)
	}
	o.Verdict = verdicts[o.ExitCode]
}
