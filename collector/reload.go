package collector

import (
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// Reload reads the config file and applies it. A bad file leaves the config
// in force running and sets the reload metric to 0.
func (c *Collector) Reload(path string) error {
	cfg, err := config.LoadFile(path)
	if err == nil {
		err = c.Apply(cfg)
	}
	if err != nil {
		c.self.reloaded(false, time.Now())
		c.logger.Error("config reload failed; the previous config keeps running", "file", path, "err", err)
		return err
	}
	c.self.reloaded(true, time.Now())
	c.logger.Info("config loaded", "file", path, "endpoints", len(cfg.Endpoints), "files", len(cfg.Files))
	if len(cfg.Endpoints) == 0 && len(cfg.Files) == 0 {
		// The container image's own configuration is like this, so that a
		// container started without one raises no alert.
		c.logger.Warn("the configuration watches nothing: add endpoints or files to it, or mount your own over it "+
			"(docker run -v $PWD/config.yml:/etc/mcp_cert_exporter/config.yml:ro ...)", "file", path)
	}
	return nil
}
