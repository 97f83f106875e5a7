package core

import (
	"errors"
	"fmt"
)

// Sentinel errors. Front-ends map them, with errors.Is, in one table each
// (resp/errors.go, httpapi/errors.go). Wrap with %w to add detail.
var (
	// ErrInvalid: a malformed or out-of-range argument. Nothing changed.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: the key (or lock) does not exist or has expired.
	ErrNotFound = errors.New("not found")
	// ErrWrongType: the key holds a value of another type.
	ErrWrongType = errors.New("operation against a key holding the wrong kind of value")
	// ErrNotInteger: a counter operation on a string that is not an int64.
	ErrNotInteger = errors.New("value is not an integer or out of range")
	// ErrOverflow: the increment would overflow int64. Nothing changed.
	ErrOverflow = errors.New("increment or decrement would overflow")
	// ErrVersionMismatch: a compare-and-set failed. Use VersionError for the
	// current version.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrLocked: a lock is held by another owner. Use LockedError for who.
	ErrLocked = errors.New("lock is held by another owner")
	// ErrNotHeld: the mutex handle does not hold the mutex.
	ErrNotHeld = errors.New("handle does not hold the mutex")
	// ErrTimeout: the wait for a mutex passed without it being granted.
	ErrTimeout = errors.New("timed out waiting for the mutex")
	// ErrTooLarge: a value above the configured max_value_bytes.
	ErrTooLarge = errors.New("value is larger than max_value_bytes")
	// ErrUnavailable: a sync failed earlier and the store refuses writes (D6).
	ErrUnavailable = errors.New("store is read-only after a failed disk sync")
	// ErrClosed: the store is shutting down.
	ErrClosed = errors.New("server is shutting down")
	// ErrNoAuth: a token is required and none was presented.
	ErrNoAuth = errors.New("authentication required")
	// ErrBadToken: the presented token matches no configured token.
	ErrBadToken = errors.New("invalid token")
	// ErrForbidden: the token is valid but limited to another account.
	ErrForbidden = errors.New("token does not grant this account")
)

// Sentinels lists every sentinel, so front-end tests can check each is mapped.
var Sentinels = []error{
	ErrInvalid, ErrNotFound, ErrWrongType, ErrNotInteger, ErrOverflow,
	ErrVersionMismatch, ErrLocked, ErrNotHeld, ErrTimeout, ErrTooLarge,
	ErrUnavailable, ErrClosed, ErrNoAuth, ErrBadToken, ErrForbidden,
}

// VersionError is a failed compare-and-set; it Is ErrVersionMismatch.
type VersionError struct {
	Current uint64 // 0 when the key is absent
}

func (e *VersionError) Error() string {
	if e.Current == 0 {
		return "version mismatch: the key does not exist"
	}
	return fmt.Sprintf("version mismatch: current version is %d", e.Current)
}

// Is makes errors.Is(err, ErrVersionMismatch) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersionMismatch }

// LockedError is a lock held by another owner; it Is ErrLocked.
type LockedError struct {
	Owner       string
	RemainingMs int64 // -1 when the key has no expiry
}

func (e *LockedError) Error() string {
	if e.RemainingMs < 0 {
		return fmt.Sprintf("lock is held by %q without expiry", e.Owner)
	}
	return fmt.Sprintf("lock is held by %q for another %d ms", e.Owner, e.RemainingMs)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
