package cdc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultConnectTimeout bounds each connection attempt when neither
// Config.ConnectTimeout nor the connection string's connect_timeout sets
// a bound.
const DefaultConnectTimeout = 10 * time.Second

// defaultPoolMaxConns is the query pool's size unless the connection
// string sets pool_max_conns.
const defaultPoolMaxConns = 4

// connectTimeout applies the stream's connect timeout to pc: the
// connection string's connect_timeout when it set one, else
// Config.ConnectTimeout (negative: none), else DefaultConnectTimeout.
func (c *Config) connectTimeout(pc *pgconn.Config) {
	switch {
	case pc.ConnectTimeout > 0:
	case c.ConnectTimeout > 0:
		pc.ConnectTimeout = c.ConnectTimeout
	case c.ConnectTimeout == 0:
		pc.ConnectTimeout = DefaultConnectTimeout
	}
}

// poolConfig is the query pool's configuration: the connection string's
// pool_* settings (pgxpool's) honoured, at most four connections unless
// pool_max_conns says otherwise, and the connect timeout.
func (c *Config) poolConfig() (*pgxpool.Config, error) {
	pc, err := pgconn.ParseConfig(c.ConnString)
	if err != nil {
		return nil, &ConfigError{Err: errors.New("ConnString is not a valid postgres URL or DSN")}
	}
	_, maxSet := pc.RuntimeParams["pool_max_conns"]
	poolCfg, err := pgxpool.ParseConfig(c.ConnString)
	if err != nil {
		// A pool_* setting pgxpool cannot read; its error may quote the
		// connection string.
		return nil, &ConfigError{Err: errors.New("ConnString has an invalid pool_* setting")}
	}
	if !maxSet {
		poolCfg.MaxConns = defaultPoolMaxConns
	}
	c.connectTimeout(&poolCfg.ConnConfig.Config)
	defaultAppName(poolCfg.ConnConfig.RuntimeParams)
	return poolCfg, nil
}

// replicationConfig is the replication connection's configuration: the
// connection string without its pool_* settings (they are the query
// pool's, and the server refuses parameters it does not know), with
// replication=database and the connect timeout.
func (c *Config) replicationConfig() (*pgconn.Config, error) {
	pc, err := pgconn.ParseConfig(c.ConnString)
	if err != nil {
		return nil, &ConfigError{Err: errors.New("ConnString is not a valid postgres URL or DSN")}
	}
	for k := range pc.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(pc.RuntimeParams, k)
		}
	}
	pc.RuntimeParams["replication"] = "database"
	defaultAppName(pc.RuntimeParams)
	c.connectTimeout(pc)
	return pc, nil
}

// hosts names the servers of pc, "host:port" each, for errors.
func hosts(pc *pgconn.Config) string {
	names := []string{hostPort(pc.Host, pc.Port)}
	for _, f := range pc.Fallbacks {
		if n := hostPort(f.Host, f.Port); n != names[len(names)-1] {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

func hostPort(host string, port uint16) string {
	if strings.HasPrefix(host, "/") { // a Unix socket directory
		return host + "/.s.PGSQL." + strconv.Itoa(int(port))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// connectError wraps a failed connection attempt with the server it was
// made to, and says so when the connect timeout ran out.
func connectError(op string, pc *pgconn.Config, err error) error {
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cdc: %s %s: no answer within the connect timeout (%v): %w", op, hosts(pc), pc.ConnectTimeout, err)
	}
	return fmt.Errorf("cdc: %s %s: %w", op, hosts(pc), err)
}

// connectOne opens one query connection for the calls that work without a
// stream (Check, Drop): a pool of one, so pool_* settings and the connect
// timeout apply as they do to a stream's pool. release closes it.
func (c *Config) connectOne(ctx context.Context) (conn *pgxpool.Conn, release func(), err error) {
	poolCfg, err := c.poolConfig()
	if err != nil {
		return nil, nil, err
	}
	poolCfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cdc: connect: %w", err)
	}
	conn, err = pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, nil, connectError("connect to", &poolCfg.ConnConfig.Config, err)
	}
	return conn, func() { conn.Release(); pool.Close() }, nil
}
