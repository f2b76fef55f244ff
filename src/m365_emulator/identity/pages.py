"""The HTML of the sign-in experience. Plain forms that work without JavaScript, so scripted
browser walks (tests, the product's e2e suite) can drive them."""

from html import escape

_STYLE = (
    "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f2f2f2}"
    "main{max-width:440px;margin:60px auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "input[type=text],input[type=password],input[type=email]{width:100%;padding:6px;margin:6px 0 12px}"
    ".error{color:#e81123}button{padding:6px 20px;margin-right:8px}"
)


def _page(title: str, body: str, onload: str = "") -> str:
    onload_attribute = f' onload="{onload}"' if onload else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body{onload_attribute}><main>{body}</main></body></html>"
    )


def sign_in_page(action: str, transaction_id: str, username: str, error: str | None, app_name: str) -> str:
    error_html = f'<p class="error" id="error">{escape(error)}</p>' if error else ""
    return _page(
        "Sign in to your account",
        f"<h1>Sign in</h1><p>to continue to {escape(app_name)}</p>{error_html}"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="tx" value="{escape(transaction_id)}">'
        f'<label for="username">Email or phone</label>'
        f'<input type="email" id="username" name="username" value="{escape(username)}" autocomplete="username">'
        f'<label for="password">Password</label>'
        f'<input type="password" id="password" name="password" autocomplete="current-password">'
        f'<button type="submit">Sign in</button></form>',
    )


def consent_page(
    action: str,
    transaction_id: str,
    app_name: str,
    username: str,
    permissions: list[str],
    application_permissions: list[str],
    for_organization: bool,
) -> str:
    items = "".join(f'<li class="permission">{escape(name)}</li>' for name in permissions)
    app_items = "".join(f'<li class="app-permission">{escape(name)}</li>' for name in application_permissions)
    app_section = (
        f"<p>This app also requires these application permissions:</p><ul>{app_items}</ul>" if app_items else ""
    )
    organization_note = (
        "<p><strong>Consent on behalf of your organization.</strong> Accepting grants these permissions to "
        "this app for every user in your organization.</p>"
        if for_organization
        else ""
    )
    return _page(
        "Permissions requested",
        f"<h1>Permissions requested</h1><p>{escape(app_name)}</p><p>Signed in as {escape(username)}</p>"
        f"<p>This app would like to:</p><ul>{items}</ul>{app_section}{organization_note}"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="tx" value="{escape(transaction_id)}">'
        f'<button type="submit" name="consent" value="accept">Accept</button>'
        f'<button type="submit" name="consent" value="cancel">Cancel</button></form>',
    )


def error_page(title: str, message: str) -> str:
    return _page(title, f'<h1>{escape(title)}</h1><p class="error" id="error">{escape(message)}</p>')


def form_post_page(redirect_uri: str, fields: dict[str, str]) -> str:
    """OIDC form_post response mode: the browser posts the result to the redirect URI."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in fields.items()
    )
    return _page(
        "Working...",
        f'<form method="post" action="{escape(redirect_uri)}">{inputs}'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<button type="submit">Submit</button></noscript></form>',
        onload="document.forms[0].submit()",
    )
