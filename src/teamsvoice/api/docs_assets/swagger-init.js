// Starts Swagger UI on this server's OpenAPI document (a file, not an inline script: the docs' CSP allows
// scripts from this origin only).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
