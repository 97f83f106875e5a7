package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// crashClient is the one client interface the crash tests (kill_test.go,
// linearizability_test.go) drive, so one workload runs over RESP and HTTP
// alike (STYLE 22). acc/id name a key the way both protocols do: RESP key
// {acc}:id is HTTP /db/acc/<kind>/id.
//
// Errors: a *replyError means the server answered something the test did
// not expect (a bug, the test fails); any other error is a transport
// failure, so the outcome of the call is unknown (the server may have been
// killed after applying it).
type crashClient interface {
	proto() string
	incr(ctx context.Context, acc, id string) (int64, error)
	ctrGet(ctx context.Context, acc, id string) (n int64, found bool, err error)
	// seqNext reserves count values and returns the highest.
	seqNext(ctx context.Context, acc, id string, count uint64) (uint64, error)
	seqGet(ctx context.Context, acc, id string) (n uint64, found bool, err error)
	// kvSet is a compare-and-set: ver 0 means "only if absent".
	kvSet(ctx context.Context, acc, id, val string, ver uint64) (newVer uint64, mismatch bool, err error)
	kvGet(ctx context.Context, acc, id string) (val string, ver uint64, found bool, err error)
	// kvDel deletes; ver 0 unconditionally, else only at version ver.
	kvDel(ctx context.Context, acc, id string, ver uint64) (deleted, mismatch bool, err error)
	lockAcquire(ctx context.Context, acc, id, owner string) (token uint64, locked bool, err error)
	// lockRelease: released is releasedYes, releasedFree or releasedOK
	// (HTTP's 204 does not tell which of the two it was).
	lockRelease(ctx context.Context, acc, id, owner string) (released int, locked bool, err error)
	lockGet(ctx context.Context, acc, id string) (lockView, error)
	// mlock takes the in-memory mutex without waiting; timedOut when held.
	mlock(ctx context.Context, acc, id string) (handle uint64, timedOut bool, err error)
	munlock(ctx context.Context, acc, id string, handle uint64) error
	close()
}

const (
	releasedYes  = 1  // the owner's lock was released
	releasedFree = 0  // the lock was already free
	releasedOK   = -1 // one of the two (HTTP)
)

// lockSeconds is long enough that no lock of the crash tests expires while
// they run, so the models can ignore expiry.
const lockSeconds = 3600

// lockView is what LOCK.GET and GET /lock/{id} tell.
type lockView struct {
	found       bool
	owner       string
	token       uint64
	remainingMs int64 // -1: no expiry
}

// replyError is an answer the test did not expect: never an unknown outcome.
type replyError struct{ msg string }

func (e *replyError) Error() string { return e.msg }

func unexpected(format string, args ...any) error {
	return &replyError{fmt.Sprintf(format, args...)}
}

// isReplyError reports whether err is an unexpected answer (a test failure)
// rather than a transport failure.
func isReplyError(err error) bool {
	var re *replyError
	return errors.As(err, &re)
}

// respClient talks RESP through go-redis with one connection and no
// retries: a retried write would make "acknowledged" ambiguous.
type respClient struct{ rdb *redis.Client }

// clientOf returns a client of p over RESP when n is even and over HTTP
// otherwise: the crash tests spread their workers over both protocols,
// alternating per round.
func clientOf(p *proc, n int) crashClient {
	if n%2 == 0 {
		return newRESPClient(p.resp)
	}
	return newHTTPClient(p.base)
}

func newRESPClient(addr string) *respClient {
	return &respClient{redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		MaxRetries:      -1,
		PoolSize:        1,
		DialTimeout:     5 * time.Second,
		DialerRetries:   1,
		ReadTimeout:     20 * time.Second,
		WriteTimeout:    20 * time.Second,
		DisableIdentity: true,
	})}
}

func (c *respClient) proto() string { return "resp" }
func (c *respClient) close()        { c.rdb.Close() }

func respKey(acc, id string) string { return "{" + acc + "}:" + id }

// respErr turns a server error reply into a *replyError; transport errors
// pass through.
func respErr(cmd string, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return unexpected("%s: server error %q", cmd, err.Error())
	}
	return err
}

func (c *respClient) incr(ctx context.Context, acc, id string) (int64, error) {
	n, err := c.rdb.Incr(ctx, respKey(acc, id)).Result()
	return n, respErr("INCR", err)
}

// incrPipeline sends INCR of every id in one pipeline. A command whose
// reply arrived has a nil Err; err is the first failure.
func (c *respClient) incrPipeline(ctx context.Context, acc string, ids []string) ([]*redis.IntCmd, error) {
	cmds := make([]*redis.IntCmd, len(ids))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Incr(ctx, respKey(acc, id))
		}
		return nil
	})
	return cmds, respErr("INCR (pipelined)", err)
}

func (c *respClient) ctrGet(ctx context.Context, acc, id string) (int64, bool, error) {
	n, err := c.rdb.Get(ctx, respKey(acc, id)).Int64()
	if err == redis.Nil {
		return 0, false, nil
	}
	return n, err == nil, respErr("GET", err)
}

func (c *respClient) seqNext(ctx context.Context, acc, id string, count uint64) (uint64, error) {
	args := []any{"SEQ.NEXT", respKey(acc, id)}
	if count != 1 {
		args = append(args, "COUNT", count)
	}
	n, err := c.rdb.Do(ctx, args...).Uint64()
	return n, respErr("SEQ.NEXT", err)
}

func (c *respClient) seqGet(ctx context.Context, acc, id string) (uint64, bool, error) {
	n, err := c.rdb.Do(ctx, "SEQ.GET", respKey(acc, id)).Uint64()
	if err == redis.Nil {
		return 0, false, nil
	}
	return n, err == nil, respErr("SEQ.GET", err)
}

func (c *respClient) kvSet(ctx context.Context, acc, id, val string, ver uint64) (uint64, bool, error) {
	n, err := c.rdb.Do(ctx, "KV.SET", respKey(acc, id), val, "VER", ver).Uint64()
	if err != nil && redis.HasErrorPrefix(err, "VERSION") {
		return 0, true, nil
	}
	return n, false, respErr("KV.SET", err)
}

func (c *respClient) kvGet(ctx context.Context, acc, id string) (string, uint64, bool, error) {
	r, err := c.rdb.Do(ctx, "KV.GET", respKey(acc, id)).Slice()
	if err == redis.Nil {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, respErr("KV.GET", err)
	}
	if len(r) != 2 {
		return "", 0, false, unexpected("KV.GET: %v", r)
	}
	val, ok1 := r[0].(string)
	ver, ok2 := r[1].(int64)
	if !ok1 || !ok2 || ver <= 0 {
		return "", 0, false, unexpected("KV.GET: %#v", r)
	}
	return val, uint64(ver), true, nil
}

func (c *respClient) kvDel(ctx context.Context, acc, id string, ver uint64) (bool, bool, error) {
	args := []any{"KV.DEL", respKey(acc, id)}
	if ver != 0 {
		args = append(args, "VER", ver)
	}
	n, err := c.rdb.Do(ctx, args...).Int64()
	switch {
	case err != nil && redis.HasErrorPrefix(err, "VERSION"):
		return false, true, nil
	case err != nil:
		return false, false, respErr("KV.DEL", err)
	case n != 0 && n != 1:
		return false, false, unexpected("KV.DEL: %d", n)
	}
	return n == 1, false, nil
}

func (c *respClient) lockAcquire(ctx context.Context, acc, id, owner string) (uint64, bool, error) {
	n, err := c.rdb.Do(ctx, "LOCK.ACQUIRE", respKey(acc, id), owner, lockSeconds).Uint64()
	if err == redis.Nil {
		return 0, true, nil
	}
	return n, false, respErr("LOCK.ACQUIRE", err)
}

func (c *respClient) lockRelease(ctx context.Context, acc, id, owner string) (int, bool, error) {
	n, err := c.rdb.Do(ctx, "LOCK.RELEASE", respKey(acc, id), owner).Int64()
	if err != nil && redis.HasErrorPrefix(err, "LOCKED") {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, respErr("LOCK.RELEASE", err)
	}
	if n != 0 && n != 1 {
		return 0, false, unexpected("LOCK.RELEASE: %d", n)
	}
	return int(n), false, nil
}

func (c *respClient) lockGet(ctx context.Context, acc, id string) (lockView, error) {
	r, err := c.rdb.Do(ctx, "LOCK.GET", respKey(acc, id)).Slice()
	if err == redis.Nil {
		return lockView{}, nil
	}
	if err != nil {
		return lockView{}, respErr("LOCK.GET", err)
	}
	if len(r) != 3 {
		return lockView{}, unexpected("LOCK.GET: %v", r)
	}
	owner, ok1 := r[0].(string)
	ms, ok2 := r[1].(int64)
	tok, ok3 := r[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return lockView{}, unexpected("LOCK.GET: %#v", r)
	}
	return lockView{found: true, owner: owner, token: uint64(tok), remainingMs: ms}, nil
}

// setNX takes lock acc/id for owner the way Redis lock libraries do;
// taken reports another holder.
func (c *respClient) setNX(ctx context.Context, acc, id, owner string) (taken bool, err error) {
	ok, err := c.rdb.SetNX(ctx, respKey(acc, id), owner, lockSeconds*time.Second).Result()
	return !ok && err == nil, respErr("SET NX", err)
}

// delIfEq releases lock acc/id if owner holds it (DELEX IFEQ).
func (c *respClient) delIfEq(ctx context.Context, acc, id, owner string) (bool, error) {
	n, err := c.rdb.Do(ctx, "DELEX", respKey(acc, id), "IFEQ", owner).Int64()
	if err != nil {
		return false, respErr("DELEX", err)
	}
	if n != 0 && n != 1 {
		return false, unexpected("DELEX: %d", n)
	}
	return n == 1, nil
}

// mutexSeconds is the mutex duration of the crash tests: longer than a
// round, so a mutex never expires under its holder.
const mutexSeconds = 30

func (c *respClient) mlock(ctx context.Context, acc, id string) (uint64, bool, error) {
	h, err := c.rdb.Do(ctx, "MLOCK", respKey(acc, id), mutexSeconds, 0).Uint64()
	if err == redis.Nil {
		return 0, true, nil
	}
	return h, false, respErr("MLOCK", err)
}

func (c *respClient) munlock(ctx context.Context, acc, id string, handle uint64) error {
	return respErr("MUNLOCK", c.rdb.Do(ctx, "MUNLOCK", respKey(acc, id), handle).Err())
}

// httpClient talks to /db/… with its own transport: POST is never retried
// by net/http, and a fresh transport per client keeps connections apart.
type httpClient struct {
	base string // http://host:port
	hc   *http.Client
}

func newHTTPClient(base string) *httpClient {
	return &httpClient{base: base, hc: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
		Timeout:   20 * time.Second,
	}}
}

func (c *httpClient) proto() string { return "http" }
func (c *httpClient) close()        { c.hc.CloseIdleConnections() }

// do sends one request; a transport failure (or a cut-off body) is returned
// as err, any complete answer as status and trimmed body.
func (c *httpClient) do(ctx context.Context, method, path, body string) (int, string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, "", nil, err
	}
	return res.StatusCode, string(b), res.Header, nil
}

func httpPath(acc, kind, id string) string {
	return "/db/" + url.PathEscape(acc) + "/" + kind + "/" + url.PathEscape(id)
}

func number(what string, code int, body string) (uint64, error) {
	if code != http.StatusOK {
		return 0, unexpected("%s: %d %s", what, code, body)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(body), 10, 64)
	if err != nil {
		return 0, unexpected("%s: body %q", what, body)
	}
	return n, nil
}

func (c *httpClient) incr(ctx context.Context, acc, id string) (int64, error) {
	code, body, _, err := c.do(ctx, "POST", httpPath(acc, "counter", id), "")
	if err != nil {
		return 0, err
	}
	n, err := number("POST counter", code, body)
	return int64(n), err
}

func (c *httpClient) ctrGet(ctx context.Context, acc, id string) (int64, bool, error) {
	code, body, _, err := c.do(ctx, "GET", httpPath(acc, "counter", id), "")
	if err != nil || code == http.StatusNotFound {
		return 0, false, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(body), 10, 64)
	if code != http.StatusOK || err != nil {
		return 0, false, unexpected("GET counter: %d %s", code, body)
	}
	return n, true, nil
}

func (c *httpClient) seqNext(ctx context.Context, acc, id string, count uint64) (uint64, error) {
	path := httpPath(acc, "sequence", id)
	if count != 1 {
		path += "?count=" + strconv.FormatUint(count, 10)
	}
	code, body, _, err := c.do(ctx, "POST", path, "")
	if err != nil {
		return 0, err
	}
	return number("POST sequence", code, body)
}

func (c *httpClient) seqGet(ctx context.Context, acc, id string) (uint64, bool, error) {
	code, body, _, err := c.do(ctx, "GET", httpPath(acc, "sequence", id), "")
	if err != nil || code == http.StatusNotFound {
		return 0, false, err
	}
	n, err := number("GET sequence", code, body)
	return n, err == nil, err
}

func (c *httpClient) kvSet(ctx context.Context, acc, id, val string, ver uint64) (uint64, bool, error) {
	path := httpPath(acc, "kv", id) + "?ver=" + strconv.FormatUint(ver, 10)
	code, body, _, err := c.do(ctx, "PUT", path, val)
	if err != nil {
		return 0, false, err
	}
	if code == http.StatusConflict && strings.Contains(body, "version_mismatch") {
		return 0, true, nil
	}
	n, err := number("PUT kv", code, body)
	return n, false, err
}

func (c *httpClient) kvGet(ctx context.Context, acc, id string) (string, uint64, bool, error) {
	code, body, h, err := c.do(ctx, "GET", httpPath(acc, "kv", id), "")
	if err != nil || code == http.StatusNotFound {
		return "", 0, false, err
	}
	ver, perr := strconv.ParseUint(h.Get("X-Version"), 10, 64)
	if code != http.StatusOK || perr != nil || ver == 0 {
		return "", 0, false, unexpected("GET kv: %d %q X-Version %q", code, body, h.Get("X-Version"))
	}
	return body, ver, true, nil
}

func (c *httpClient) kvDel(ctx context.Context, acc, id string, ver uint64) (bool, bool, error) {
	path := httpPath(acc, "kv", id)
	if ver != 0 {
		path += "?ver=" + strconv.FormatUint(ver, 10)
	}
	code, body, _, err := c.do(ctx, "DELETE", path, "")
	switch {
	case err != nil:
		return false, false, err
	case code == http.StatusNoContent:
		return true, false, nil
	case code == http.StatusNotFound && ver == 0:
		return false, false, nil
	case code == http.StatusConflict && strings.Contains(body, "version_mismatch"):
		return false, true, nil
	}
	return false, false, unexpected("DELETE kv: %d %s", code, body)
}

func (c *httpClient) lockAcquire(ctx context.Context, acc, id, owner string) (uint64, bool, error) {
	path := httpPath(acc, "lock", id) + "?owner=" + url.QueryEscape(owner) + "&dur=" + strconv.Itoa(lockSeconds)
	code, body, _, err := c.do(ctx, "POST", path, "")
	if err != nil {
		return 0, false, err
	}
	if code == http.StatusConflict && strings.Contains(body, `"locked"`) {
		return 0, true, nil
	}
	n, err := number("POST lock", code, body)
	return n, false, err
}

func (c *httpClient) lockRelease(ctx context.Context, acc, id, owner string) (int, bool, error) {
	path := httpPath(acc, "lock", id) + "?owner=" + url.QueryEscape(owner)
	code, body, _, err := c.do(ctx, "DELETE", path, "")
	switch {
	case err != nil:
		return 0, false, err
	case code == http.StatusNoContent:
		return releasedOK, false, nil
	case code == http.StatusConflict && strings.Contains(body, `"locked"`):
		return 0, true, nil
	}
	return 0, false, unexpected("DELETE lock: %d %s", code, body)
}

func (c *httpClient) lockGet(ctx context.Context, acc, id string) (lockView, error) {
	code, body, _, err := c.do(ctx, "GET", httpPath(acc, "lock", id), "")
	if err != nil || code == http.StatusNotFound {
		return lockView{}, err
	}
	var li struct {
		Owner       string `json:"owner"`
		Token       uint64 `json:"token"`
		RemainingMs int64  `json:"remaining_ms"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &li) != nil || li.Owner == "" {
		return lockView{}, unexpected("GET lock: %d %s", code, body)
	}
	return lockView{found: true, owner: li.Owner, token: li.Token, remainingMs: li.RemainingMs}, nil
}

func (c *httpClient) mlock(ctx context.Context, acc, id string) (uint64, bool, error) {
	path := httpPath(acc, "mlock", id) + "?wait=0&dur=" + strconv.Itoa(mutexSeconds)
	code, body, _, err := c.do(ctx, "POST", path, "")
	if err != nil {
		return 0, false, err
	}
	if code == http.StatusConflict && strings.Contains(body, `"timeout"`) {
		return 0, true, nil
	}
	h, err := number("POST mlock", code, body)
	return h, false, err
}

func (c *httpClient) munlock(ctx context.Context, acc, id string, handle uint64) error {
	path := httpPath(acc, "munlock", id) + "?handle=" + strconv.FormatUint(handle, 10)
	code, body, _, err := c.do(ctx, "POST", path, "")
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return unexpected("POST munlock: %d %s", code, body)
	}
	return nil
}
