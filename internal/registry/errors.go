package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kind says what went wrong with a lookup, as a stable word for metrics and records.
type Kind string

// The kinds of lookup errors.
const (
	// KindNotFound: the registry answered 404 for the tag, digest or repository.
	KindNotFound Kind = "not_found"
	// KindUnauthorized: the registry refused us (401/403), with or without credentials.
	KindUnauthorized Kind = "unauthorized"
	// KindRateLimited: the registry answered 429, or we are waiting out its Retry-After.
	KindRateLimited Kind = "rate_limited"
	// KindUnreachable: no HTTP answer: connection refused, DNS, TLS.
	KindUnreachable Kind = "unreachable"
	// KindTimeout: no answer in time (the caller's deadline, or the request timeout).
	KindTimeout Kind = "timeout"
	// KindRegistryError: the registry answered, but with a server error or something we cannot use.
	KindRegistryError Kind = "registry_error"
	// KindNotConfigured: the registry is not listed and unlisted registries are not asked.
	KindNotConfigured Kind = "not_configured"
)

// Error is a failed lookup.
type Error struct {
	Kind     Kind
	Registry string // host[:port]
	Status   int    // the HTTP status, when there was one
	Detail   string // what happened, for a person
	// LastGood is when this tag or digest last had a good answer from the registry; zero if never.
	LastGood time.Time
}

func (e *Error) Error() string {
	return fmt.Sprintf("registry %s: %s", e.Registry, e.Detail)
}

// classify turns whatever go-containerregistry or the transport returned into an *Error.
func classify(err error, registry string, haveCredentials bool) *Error {
	var re *Error
	if errors.As(err, &re) {
		c := *re
		return &c
	}
	e := &Error{Registry: registry}
	var te *transport.Error
	if errors.As(err, &te) {
		e.Status = te.StatusCode
		switch te.StatusCode {
		case http.StatusNotFound:
			e.Kind = KindNotFound
			e.Detail = "not found (404" + diagnosticCodes(te) + ")"
		case http.StatusUnauthorized, http.StatusForbidden:
			e.Kind = KindUnauthorized
			if haveCredentials {
				e.Detail = fmt.Sprintf("refused the configured credentials (%d %s%s)", te.StatusCode, http.StatusText(te.StatusCode), diagnosticCodes(te))
			} else {
				e.Detail = fmt.Sprintf("requires credentials, and none are configured for it (%d %s%s)", te.StatusCode, http.StatusText(te.StatusCode), diagnosticCodes(te))
			}
		case http.StatusTooManyRequests:
			e.Kind = KindRateLimited
			e.Detail = "rate limited us (429)"
		default:
			e.Kind = KindRegistryError
			e.Detail = fmt.Sprintf("answered %d %s%s", te.StatusCode, http.StatusText(te.StatusCode), diagnosticCodes(te))
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		e.Kind = KindTimeout
		e.Detail = "did not answer within the request timeout"
		return e
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) || errors.As(err, &verifyErr) || errors.As(err, &recordErr) {
		e.Kind = KindUnreachable
		e.Detail = "TLS failed: " + innermost(err) + " (set tls.ca_file for this registry)"
		return e
	}
	var ne net.Error
	if errors.As(err, &ne) {
		e.Kind = KindUnreachable
		if ne.Timeout() {
			e.Kind = KindTimeout
		}
		e.Detail = "unreachable: " + innermost(err)
		return e
	}
	e.Kind = KindRegistryError
	e.Detail = innermost(err)
	return e
}

func diagnosticCodes(te *transport.Error) string {
	var codes []string
	for _, d := range te.Errors {
		if d.Code != "" {
			codes = append(codes, string(d.Code))
		}
	}
	if len(codes) == 0 {
		return ""
	}
	return ", " + strings.Join(codes, ", ")
}

// innermost returns the message of err without the URL wrapper's repetition of method and URL.
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		if _, ok := err.(interface{ Timeout() bool }); ok {
			// url.Error and net.OpError: keep unwrapping to the cause.
			err = u
			continue
		}
		return err.Error()
	}
}
