//! The images a run needs, made ready before any tenant's steps (pulled, or the built-in site
//! image built, once per run), with progress per image; one that could not be made ready fails
//! only the tenants that use it, at their image step.

use super::*;

impl Applier {
    /// Makes sure every image the changed tenants need is on the host before any container is made.
    /// A missing image fails only the tenants that use it (their container step reports it).
    pub(super) async fn images(&self, changes: &[Change]) {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for c in changes.iter().filter(|c| c.rolls_out_spec()) {
            if let Some(image) = c
                .after
                .as_ref()
                .and_then(|a| a.get("image"))
                .and_then(|v| v.as_str())
            {
                wanted.insert(image.to_string());
            }
        }
        for image in wanted {
            if let Err(e) = self.ensure_image(&image).await {
                self.progress.line(None, &format!("image {image}: {e}"));
                self.missing_images
                    .lock()
                    .await
                    .insert(image, e.to_string());
            }
        }
    }

    pub(super) async fn ensure_image(&self, image: &str) -> Result<(), RuntimeError> {
        let backend = self.runtime.backend();
        let progress = |line: &str| self.progress.image(image, line);
        let result = if image == builtin_site_image() {
            backend
                .ensure_site_image(image, &progress)
                .await
                .map(|_| ())
        } else {
            backend.ensure_image(image, &progress).await
        };
        self.progress.image_done(image);
        result
    }

    /// A tenant's `image` step: its image was made ready before any tenant's steps; one that
    /// could not be is tried again here, and fails the step if it still cannot.
    pub(super) async fn image_step(&self, c: &Change) -> Result<(), ApplyError> {
        let Some(image) = c
            .after
            .as_ref()
            .and_then(|a| a.get("image"))
            .and_then(|v| v.as_str())
        else {
            return Ok(());
        };
        if !self.missing_images.lock().await.contains_key(image) {
            return Ok(());
        }
        match self.ensure_image(image).await {
            Ok(()) => {
                self.missing_images.lock().await.remove(image);
                Ok(())
            }
            Err(e) => Err(ApplyError::Step(format!("image {image}: {e}"))),
        }
    }
}
