package core

import (
	"errors"
	"testing"
)

func TestAuthIdentifyAndAllow(t *testing.T) {
	global := Auth{Token: "root"}
	perAcc := Auth{Accounts: map[string]string{"acme": "t-acme", "beta": "t-beta", "empty": ""}}
	both := Auth{Token: "root", Accounts: map[string]string{"acme": "t-acme"}}
	tests := []struct {
		name     string
		auth     Auth
		token    string
		acc      string // account the request acts on
		limited  string // the account Identify returns
		idErr    error
		allowErr error
	}{
		{name: "no tokens configured: anything goes", auth: Auth{}, token: "", acc: "x"},
		{name: "no tokens configured: any token goes", auth: Auth{}, token: "junk", acc: "x"},
		{name: "global: missing token", auth: global, token: "", idErr: ErrNoAuth},
		{name: "global: wrong token", auth: global, token: "roo", idErr: ErrBadToken},
		{name: "global: token grants every account", auth: global, token: "root", acc: "any"},
		{name: "account token grants its account", auth: perAcc, token: "t-acme", acc: "acme", limited: "acme"},
		{name: "account token is forbidden elsewhere", auth: perAcc, token: "t-acme", acc: "beta", limited: "acme", allowErr: ErrForbidden},
		{name: "account tokens: missing token", auth: perAcc, token: "", idErr: ErrNoAuth},
		{name: "account tokens: unknown token", auth: perAcc, token: "t-gamma", idErr: ErrBadToken},
		{name: "an empty account token matches nothing", auth: perAcc, token: "x", idErr: ErrBadToken},
		{name: "both: global token", auth: both, token: "root", acc: "acme"},
		{name: "both: account token", auth: both, token: "t-acme", acc: "acme", limited: "acme"},
		{name: "both: account token elsewhere", auth: both, token: "t-acme", acc: "zeta", limited: "acme", allowErr: ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limited, err := tt.auth.Identify(tt.token)
			if !errors.Is(err, tt.idErr) || limited != tt.limited {
				t.Fatalf("Identify(%q) = (%q, %v), want (%q, %v)", tt.token, limited, err, tt.limited, tt.idErr)
			}
			if err != nil {
				return
			}
			if err := tt.auth.Allow(limited, tt.acc); !errors.Is(err, tt.allowErr) {
				t.Fatalf("Allow(%q, %q) = %v, want %v", limited, tt.acc, err, tt.allowErr)
			}
		})
	}
}

func TestAuthEnabled(t *testing.T) {
	for _, tt := range []struct {
		auth Auth
		want bool
	}{
		{Auth{}, false},
		{Auth{Accounts: map[string]string{}}, false},
		{Auth{Token: "x"}, true},
		{Auth{Accounts: map[string]string{"a": "t"}}, true},
	} {
		if got := tt.auth.Enabled(); got != tt.want {
			t.Errorf("%+v.Enabled() = %v, want %v", tt.auth, got, tt.want)
		}
	}
}
