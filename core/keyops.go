package core

import "context"

// updateKey runs fn as a write command on the single key acc/id: it checks
// the key, reads its current entry under the apply lock, and returns once
// everything fn wrote or read is durable (D1).
func (s *Store) updateKey(ctx context.Context, acc, id string, fn func(t *txn, k []byte, e *entry) error) error {
	return s.onKey(ctx, acc, id, true, fn)
}

// viewKey is updateKey for a read command.
func (s *Store) viewKey(ctx context.Context, acc, id string, fn func(t *txn, k []byte, e *entry) error) error {
	return s.onKey(ctx, acc, id, false, fn)
}

func (s *Store) onKey(ctx context.Context, acc, id string, write bool, fn func(t *txn, k []byte, e *entry) error) error {
	k, err := s.key(acc, id)
	if err != nil {
		return err
	}
	return s.runKeys(ctx, write, [][]byte{k}, func(t *txn) error {
		e, err := t.get(k)
		if err != nil {
			return err
		}
		return fn(t, k, e)
	})
}
