package sso

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// DeviceGrant is the grant_type a client polls a device sign-in with (RFC 8628).
const DeviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceStart is what a client shows the person: where to go and which code to enter; it polls
// with DeviceCode (berth's, not the provider's) every Interval seconds.
type DeviceStart struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// StartDevice begins a device sign-in with the provider (for a machine without a browser).
func (s *Service) StartDevice(ctx context.Context, idp, clientIP string) (DeviceStart, error) {
	p, secret, err := s.provider(ctx, idp)
	if err != nil {
		return DeviceStart{}, err
	}
	// Checked before the provider is called: a start costs the provider a call.
	if err := s.Store.CheckSSOLoginRoom(ctx, clientIP); err != nil {
		return DeviceStart{}, err
	}
	d, err := s.Verifier.Discover(ctx, p.Issuer)
	if err != nil || d.DeviceAuthorizationEndpoint == "" {
		if err == nil {
			return DeviceStart{}, fail(http.StatusBadRequest, ReasonProvider, "invalid_request", "identity provider %q offers no device sign-in (no device_authorization_endpoint): use berth auth login --sso with a browser", p.Name)
		}
		return DeviceStart{}, providerError(p, "discovery", err)
	}
	var r struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		ExpiresIn               int    `json:"expires_in"`
		Interval                int    `json:"interval"`
		Error                   string `json:"error"`
	}
	status, err := s.post(ctx, d.DeviceAuthorizationEndpoint, p, secret, url.Values{"scope": {p.Scopes}}, &r)
	if err != nil || status != http.StatusOK || r.DeviceCode == "" || r.UserCode == "" || r.VerificationURI == "" {
		if err == nil && r.Error != "" {
			err = errString(r.Error)
		}
		return DeviceStart{}, providerError(p, "the device authorization", err)
	}
	interval := min(max(r.Interval, 5), 60)
	life := time.Duration(r.ExpiresIn) * time.Second
	if life <= 0 || life > loginTTL {
		life = loginTTL
	}
	now := s.Now()
	l := store.SSOLogin{ID: random(), IDPID: p.ID, Kind: "device", ClientIP: clientIP, DeviceCode: r.DeviceCode, NextPoll: now.Add(time.Duration(interval) * time.Second), ExpiresAt: now.Add(life)}
	if err := s.Store.PutSSOLogin(ctx, l); err != nil {
		return DeviceStart{}, err
	}
	return DeviceStart{DeviceCode: l.ID, UserCode: trunc(r.UserCode), VerificationURI: trunc(r.VerificationURI), VerificationURIComplete: trunc(r.VerificationURIComplete),
		ExpiresIn: int(life.Seconds()), Interval: interval}, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// PollDevice asks the provider whether the person finished a device sign-in: an *Error with OAuth
// authorization_pending or slow_down while not (at most one call to the provider per interval).
func (s *Service) PollDevice(ctx context.Context, code string) (Result, error) {
	l, err := s.Store.SSOLogin(ctx, code)
	if err != nil || l.Kind != "device" {
		return Result{}, fail(http.StatusBadRequest, ReasonBadCode, "expired_token", "the device code is unknown or expired: start again")
	}
	now := s.Now()
	if now.Before(l.NextPoll) {
		return Result{}, fail(http.StatusBadRequest, ReasonPending, "slow_down", "polled too soon: wait the interval")
	}
	p, secret, err := s.providerByID(ctx, l.IDPID)
	if err != nil {
		return Result{}, err
	}
	tok, err := s.exchange(ctx, p, secret, url.Values{"grant_type": {DeviceGrant}, "device_code": {l.DeviceCode}})
	if e, ok := err.(*Error); ok && (e.OAuth == "authorization_pending" || e.OAuth == "slow_down") {
		wait := 5 * time.Second
		if e.OAuth == "slow_down" {
			wait = 10 * time.Second
		}
		s.Store.DelaySSOLogin(ctx, l.ID, now.Add(wait))
		return Result{}, fail(http.StatusBadRequest, ReasonPending, e.OAuth, "the sign-in is not finished yet")
	}
	if err != nil {
		s.Store.DeleteSSOLogin(ctx, l.ID)
		return Result{}, err
	}
	res, err := s.signIn(ctx, p, tok, "")
	s.Store.DeleteSSOLogin(ctx, l.ID)
	return res, err
}
