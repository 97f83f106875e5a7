package core

import "crypto/subtle"

// Auth is the token policy both front-ends apply (one rule, written once).
// With no tokens configured every request is allowed. Token grants every
// account; Accounts maps an account to a token that grants that account only.
type Auth struct {
	Token    string
	Accounts map[string]string
}

// Enabled reports whether any token is configured.
func (a Auth) Enabled() bool { return a.Token != "" || len(a.Accounts) > 0 }

// Identify checks a presented token. It returns the account the token is
// limited to ("" for the global token, which grants all), or ErrNoAuth when
// no token was presented and ErrBadToken when it matches none.
func (a Auth) Identify(token string) (account string, err error) {
	if !a.Enabled() {
		return "", nil
	}
	if token == "" {
		return "", ErrNoAuth
	}
	if a.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) == 1 {
		return "", nil
	}
	for acc, t := range a.Accounts {
		if t != "" && subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1 {
			return acc, nil
		}
	}
	return "", ErrBadToken
}

// Allow checks that a client identified as limitedTo (from Identify) may
// act on account acc: ErrForbidden otherwise.
func (a Auth) Allow(limitedTo, acc string) error {
	if limitedTo != "" && limitedTo != acc {
		return ErrForbidden
	}
	return nil
}
