import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from localctrl.config import Z0Settings
from localctrl.models.architectures import SD_SCHEDULER
from localctrl.z0_loss import edge_filter, local_control_loss, predicted_z0, z0_term, z0_weight


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scheduler_class", [DDPMScheduler, DDIMScheduler])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_predicted_z0_equals_the_schedulers_own(scheduler_class, prediction_type):
    scheduler = scheduler_class.from_config({**SD_SCHEDULER, "prediction_type": prediction_type})
    scheduler.set_timesteps(50)
    noisy, output = random(1, 4, 8, 8, seed=1), random(1, 4, 8, 8, seed=2)
    for t in (scheduler.timesteps[0], scheduler.timesteps[25], scheduler.timesteps[-1]):
        expected = scheduler.step(output, t, noisy).pred_original_sample
        ours = predicted_z0(output, noisy, torch.tensor([int(t)]), scheduler.alphas_cumprod, prediction_type)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("filter_name", ["sobel", "laplacian", "none"])
def test_z0_term_is_zero_when_the_prediction_is_exact(filter_name):
    z0 = random(2, 4, 8, 8)
    settings = Z0Settings(filter=filter_name)
    assert torch.equal(z0_term(z0, z0, torch.ones(2, 1, 8, 8), settings), torch.zeros(2))
    assert (z0_term(z0 + random(2, 4, 8, 8, seed=5), z0, torch.ones(2, 1, 8, 8), settings) > 0).all()


def test_filters_act_per_latent_channel():
    latents = random(1, 4, 8, 8)
    changed = latents.clone()
    changed[:, 1] = random(8, 8, seed=9)
    for name in ("sobel", "laplacian"):
        before, after = edge_filter(latents, name), edge_filter(changed, name)
        assert torch.equal(before[:, [0, 2, 3]], after[:, [0, 2, 3]]) and not torch.equal(before[:, 1], after[:, 1])


def test_reductions_differ_by_the_mask_fraction():
    z0_pred, z0 = random(1, 4, 8, 8, seed=1), random(1, 4, 8, 8, seed=2)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :] = 1  # a quarter of the latent
    image_mean = z0_term(z0_pred, z0, mask, Z0Settings(reduction="image-mean"))
    mask_mean = z0_term(z0_pred, z0, mask, Z0Settings(reduction="mask-mean"))
    torch.testing.assert_close(image_mean, mask_mean * 0.25)


def test_an_empty_mask_leaves_the_plain_diffusion_loss():
    output, target, noisy, z0 = (random(2, 4, 8, 8, seed=s) for s in range(4))
    alphas = DDPMScheduler.from_config(SD_SCHEDULER).alphas_cumprod
    terms = local_control_loss(output, target, noisy, z0, torch.tensor([10, 900]), torch.zeros(2, 1, 8, 8), alphas, "epsilon",
                               Z0Settings(weight=1.0))
    torch.testing.assert_close(terms.loss, torch.nn.functional.mse_loss(output, target))
    assert terms.loss_z0 == 0 and terms.loss == terms.loss_simple


def test_weightings_known_answers():
    alphas = DDPMScheduler.from_config(SD_SCHEDULER).alphas_cumprod
    t = torch.tensor([0, 499, 500, 999])
    assert torch.equal(z0_weight(t, alphas, Z0Settings(weight=0.1)), torch.full((4,), 0.1))
    assert torch.equal(z0_weight(t, alphas, Z0Settings(weight=0.1, weighting="window")), torch.tensor([0, 0, 0.1, 0.1]))
    torch.testing.assert_close(z0_weight(t, alphas, Z0Settings(weight=0.1, weighting="noise")), 0.1 * (1 - alphas[t]))


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="filter\n  Input should be 'sobel', 'laplacian' or 'none'"):
        Z0Settings(filter="canny")
